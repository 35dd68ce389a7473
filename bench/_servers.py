"""Throwaway PostgreSQL and Redis servers on free loopback ports, that a fault test or a chaos drill may
stop and start again: ``LocalPostgres`` (``initdb``/``pg_ctl`` in a temporary directory) and
``LocalRedis`` (a ``redis-server`` keeping nothing on disk, one of a ``Procs``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench._cluster import LOG_TAIL_CHARS, STARTUP_TIMEOUT_S, Procs, free_port


def _postgres_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "pg_ctl").is_file():
        return Path(found).resolve().parent
    return None


class LocalPostgres:
    """A throwaway PostgreSQL cluster (initdb, pg_ctl) on a free loopback port, in a temporary directory.

    PostgreSQL refuses to run as root; as root, its tools run as the ``postgres`` user (or ``nobody``).
    ``LocalPostgres.missing()`` says why one cannot be started here, or None.
    """

    def __init__(self) -> None:
        bindir = _postgres_bindir()
        assert bindir is not None, LocalPostgres.missing()
        self.bindir = bindir
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    pwd.getpwnam(name)
                    self.user = name
                    break
        # Not under pytest's tmp_path: as root that is not reachable by the user PostgreSQL runs as.
        self.home = Path(tempfile.mkdtemp(prefix="graphrun-prod-pg-"))
        self.data = self.home / "data"
        self.log = self.home / "server.log"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.home, entry.pw_uid, entry.pw_gid)
        self._initdb()

    @staticmethod
    def missing() -> str | None:
        if _postgres_bindir() is None:
            return (
                "initdb and pg_ctl were found neither under /usr/lib/postgresql/*/bin nor on PATH "
                "(Debian: apt-get install postgresql); this test stops and starts a PostgreSQL of its own"
            )
        return None

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _tool(self, tool: str, *args: str, timeout_s: float = 120.0) -> None:
        kwargs: dict[str, object] = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}\n{result.stderr.decode(errors='replace')}\n"
                f"{self.server_log()}"
            )

    def _initdb(self) -> None:
        self._tool(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
            "--no-locale", "--no-sync",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# graphrun production tests: a throwaway server, fast rather than safe\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.home}'\nmax_connections = 200\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )

    def start(self) -> None:
        self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are closed, as an operator stops a server; ``immediate``: as a crash."""
        self._tool("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def server_log(self) -> str:
        if not self.log.exists():
            return "(PostgreSQL wrote no log)"
        return f"----- {self.log} -----\n{self.log.read_text(errors='replace')[-LOG_TAIL_CHARS:]}"

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.running:
                self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


class LocalRedis:
    """A redis-server of its own on a free loopback port, keeping nothing on disk; ``kill`` and ``start``
    again bring it down and back on the same port, empty."""

    def __init__(self, procs: Procs) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, LocalRedis.missing()
        self.port = free_port()
        work = procs.work_dir / f"redis-{self.port}"
        work.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(work)]
        self.proc = procs.add(f"redis-{self.port}", argv, dict(os.environ))

    @staticmethod
    def missing() -> str | None:
        if shutil.which("redis-server") is None:
            return (
                "redis-server is not on PATH (Debian: apt-get install redis-server); this test stops and "
                "starts a Redis of its own"
            )
        return None

    @property
    def uri(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=2)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except (redis.RedisError, OSError):
                    if not self.proc.alive or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start\n{self.proc.logs()}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        self.proc.stop(kill=True)
