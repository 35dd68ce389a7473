"""Tools the deployment tests run, from this machine or else from Debian's packages unpacked into
.graphrun-test/<package> (``apt-get download`` + ``dpkg -x``: no root, no service started); when neither
can be had, a ``ToolMissing`` that says what to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNPACKED = ROOT / ".graphrun-test"


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
    if not binary.exists():
        raise ToolMissing(f"unpacked {packages[-1].name} but found no {binary}")
    return binary
