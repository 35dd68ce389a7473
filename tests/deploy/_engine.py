"""A Docker engine and the images the image and compose tests need, made on this machine.

- ``start_engine``: the engine ``scripts/engine`` finds or starts (a private ``dockerd`` under
  .graphrun-test/engine), stopped at the end of the session if it was started; ``EngineMissing`` says why
  there is none (the tests skip with it).
- ``base_image``: the Dockerfile's ``BASE_IMAGE``, a stand-in for ``python:3.11-slim-bookworm`` made with
  ``debootstrap`` from Debian's packages (the registry that serves the official one is out of reach here),
  trusting this machine's certificate authorities so that ``pip`` in the build reaches the package index
  this machine uses. Its root filesystem is kept as a tar under .graphrun-test/images, keyed by what makes
  it, so it is made once; the engine imports it when it does not have it.
- ``Engine.build``: ``docker build`` with the classic builder and the host's network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.deploy._debian import UNPACKED, say

ROOT = Path(__file__).resolve().parents[2]
ENGINE_DIR = UNPACKED / "engine"
IMAGES_DIR = UNPACKED / "images"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What python:3.11-slim-bookworm holds that graphrun uses: Python 3.11 with venv, CAs, tzdata.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "netbase", "tzdata")
BASE_RECIPE = "1"  # bump when _make_rootfs changes what it makes
# Left out of the base as the official slim images leave them out.
_TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "usr/share/info",
    "var/cache/apt",
    "var/lib/apt/lists",
)


class EngineMissing(RuntimeError):
    pass


@dataclass
class Engine:
    host: str
    started: bool

    @property
    def env(self) -> dict[str, str]:
        # The classic builder: Debian's engine has no BuildKit front end for the CLI here (no buildx).
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def docker(
        self, *args: str, timeout_s: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}"
            )
        return result

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0

    def build(self, tag: str, context: Path, dockerfile: Path, **build_args: str) -> float:
        """Builds ``tag``; the seconds it took."""
        argv = ["build", "--network", "host", "-f", str(dockerfile), "-t", tag]
        for name, value in build_args.items():
            argv += ["--build-arg", f"{name}={value}"]
        started = time.monotonic()
        self.docker(*argv, str(context), timeout_s=1800)
        return time.monotonic() - started


def start_engine() -> Engine:
    if shutil.which("docker") is None and shutil.which("apt-get") is None:
        raise EngineMissing("no docker client, and this is not Debian to install one")
    result = subprocess.run(
        [str(ROOT / "scripts" / "engine"), "start", str(ENGINE_DIR)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        raise EngineMissing(result.stderr.strip()[-600:] or f"scripts/engine exited {result.returncode}")
    host, how = result.stdout.split()[:2]
    say(f"deploy tests: Docker engine {how} at {host}")
    return Engine(host, started=how == "started")


def stop_engine(engine: Engine) -> None:
    if engine.started:
        subprocess.run([str(ROOT / "scripts" / "engine"), "stop", str(ENGINE_DIR)], timeout=120, check=False)


def _mirror() -> str:
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _key() -> str:
    digest = hashlib.sha256()
    for part in (BASE_RECIPE, " ".join(BASE_PACKAGES), _mirror()):
        digest.update(part.encode() + b"\0")
    digest.update(CA_BUNDLE.read_bytes() if CA_BUNDLE.exists() else b"")
    return digest.hexdigest()[:12]


def _make_rootfs(tar_path: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise EngineMissing("debootstrap is not installed (scripts/engine installs it with docker.io)")
    rootfs = tar_path.with_suffix(".rootfs")
    shutil.rmtree(rootfs, ignore_errors=True)
    say(f"deploy tests: making the base image with debootstrap into {rootfs} (once, a few minutes)")
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            "bookworm",
            str(rootfs),
            _mirror(),
        ],
        capture_output=True,
        timeout=1800,
        check=True,
    )
    for part in _TRIM:
        for child in (rootfs / part).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    # pip installs into the image's own environments as in the official image, not under Debian's rules.
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    shutil.copy(CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    partial = tar_path.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for child in sorted(rootfs.iterdir()):
            if child.name in ("dev", "proc", "sys"):
                tar.add(child, arcname=child.name, recursive=False)
            else:
                tar.add(child, arcname=child.name)
    partial.rename(tar_path)
    shutil.rmtree(rootfs)
    say(f"deploy tests: base image root filesystem in {tar_path} ({tar_path.stat().st_size / 1e6:.0f} MB)")


def base_image(engine: Engine) -> str:
    """The tag of the stand-in base image in ``engine``, made or imported when missing."""
    key = _key()
    tag = f"graphrun-test/python:3.11-slim-bookworm-{key}"
    if engine.has_image(tag):
        return tag
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    tar_path = IMAGES_DIR / f"base-{key}.tar"
    if not tar_path.exists():
        _make_rootfs(tar_path)
    engine.docker(
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        'CMD ["python3"]',
        str(tar_path),
        tag,
        timeout_s=600,
    )
    return tag
