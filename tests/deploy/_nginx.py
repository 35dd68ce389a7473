"""nginx for the deployment tests: the one on PATH, else Debian's package unpacked into .graphrun-test/
(``apt-get download`` + ``dpkg -x``: no root, no service started), else a failure that says what to install.

``Nginx`` runs the shipped ``deploy/nginx/graphrun.conf`` in the foreground, with only its ``listen`` line
and the upstream servers changed to this machine's free port and the test's APIs."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.deploy._debian import ToolMissing, debian_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


NginxMissing = ToolMissing


def nginx_binary() -> Path:
    return debian_tool("nginx", "nginx", inside="usr/sbin")


def render(port: int, upstreams: list[str], work: Path) -> Path:
    """An nginx.conf running the shipped server block on ``port`` in front of ``upstreams``."""
    work.mkdir(parents=True, exist_ok=True)
    shipped = (DEPLOY / "nginx" / "graphrun.conf").read_text()
    server, count = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", shipped)
    assert count == 1, "graphrun.conf has one listen line"
    (work / "graphrun.conf").write_text(server)
    upstream = (DEPLOY / "nginx" / "upstream.conf").read_text()
    servers = "".join(f"    server {u} max_fails=1 fail_timeout=5s;\n" for u in upstreams)
    upstream, count = re.subn(r"(?m)^    server .*\n(?:    server .*\n)*", servers, upstream)
    assert count == 1, "upstream.conf lists its servers together"
    (work / "upstream.conf").write_text(upstream)
    top = (DEPLOY / "nginx" / "nginx.conf").read_text()
    top = top.replace("/etc/nginx/graphrun/", f"{work}/").replace(
        "pid /tmp/nginx.pid;", f"pid {work}/nginx.pid;"
    )
    temp = "".join(
        f"    {name}_temp_path {work}/{name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    top = top.replace("http {\n", "http {\n" + temp)
    top = top.replace("access_log /dev/stdout;", f"access_log {work}/access.log;")
    top = top.replace("error_log /dev/stderr warn;", f"error_log {work}/error.log warn;")
    conf = work / "nginx.conf"
    conf.write_text(top)
    return conf


class Nginx:
    def __init__(self, port: int, upstreams: list[str], work: Path) -> None:
        self.port = port
        self.work = work
        self.conf = render(port, upstreams, work)
        self.binary = nginx_binary()
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(self.binary),
                "-t",
                "-p",
                str(self.work),
                "-e",
                str(self.work / "error.log"),
                "-c",
                str(self.conf),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start(self) -> None:
        argv = [str(self.binary), "-p", str(self.work), "-e", str(self.work / "error.log")]
        with (self.work / "stderr.log").open("wb") as stderr:
            self.popen = subprocess.Popen(
                [*argv, "-c", str(self.conf), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.popen.returncode}: {self.logs()}")
            try:
                httpx.get(f"{self.url}/ok", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer on {self.url}: {self.logs()}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.work / name
            if path.exists():
                parts.append(f"--- nginx {name} ---\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)
