"""Tools the deployment tests run, from this machine or else from Debian's packages unpacked into
.graphrun-test/<package> (``apt-get download`` + ``dpkg -x``: no root, no service started); when neither
can be had, a ``ToolMissing`` that says what to install. A fetch is said on the terminal as it starts and
ends (with its size), through pytest's output capture: nginx, Prometheus and Alertmanager are about 166 MB
unpacked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNPACKED = ROOT / ".graphrun-test"
# The session's pytest config (tests/deploy/conftest.py), to write on the terminal past the capture.
session: pytest.Config | None = None


def say(line: str) -> None:
    """``line`` on the terminal now, not in a test's captured output."""
    reporter = session.pluginmanager.get_plugin("terminalreporter") if session is not None else None
    capture = session.pluginmanager.get_plugin("capturemanager") if session is not None else None
    if reporter is None or capture is None:
        print(line, file=sys.stderr, flush=True)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def _megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class ToolMissing(RuntimeError):
    pass


def debian_tool(package: str, tool: str, inside: str = "usr/bin") -> Path:
    """``tool`` from PATH (and /usr/sbin), else from ``package``'s ``inside`` directory, unpacked once."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found:
        return Path(found)
    home = UNPACKED / package
    binary = home / inside / tool
    if binary.exists():
        return binary
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise ToolMissing(f"{tool} is not installed and this is not a Debian system: install {package}")
    debs = home / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    say(f"deploy tests: {tool} is not installed: fetching Debian's {package} package into {home} (once)")
    fetched = subprocess.run(
        ["apt-get", "download", package], cwd=debs, capture_output=True, text=True, timeout=300, check=False
    )
    packages = sorted(debs.glob(f"{package}_*.deb"))
    if fetched.returncode != 0 or not packages:
        raise ToolMissing(
            f"{tool} is not installed and `apt-get download {package}` failed "
            f"({fetched.stderr.strip()[-300:]}): install it with `apt-get install {package}`"
        )
    subprocess.run(["dpkg", "-x", str(packages[-1]), str(home)], check=True, timeout=120)
    say(f"deploy tests: fetched {packages[-1].name}, {_megabytes(home):.1f} MB unpacked in {home}")
    if not binary.exists():
        raise ToolMissing(f"unpacked {packages[-1].name} but found no {binary}")
    return binary
