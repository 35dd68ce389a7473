"""A production deployment on loopback, as ``docs/deploy.md`` runs one: ``graphrun migrate``, then any
number of ``graphrun api`` and ``graphrun worker`` processes on one database and one Redis; and throwaway
PostgreSQL and Redis servers that may be stopped and started again (bench/_servers.py). The tests
(tests/harness/cluster.py) and the chaos drills (bench/chaos.py) drive it.

- ``Procs``: every process started, each with its stdout and stderr in files; ``stop_all`` kills them all,
  whatever happened, and ``logs`` gives their output for a report.
- ``Cluster``: the deployment's processes, (re)started as a user would start them (``python -m graphrun
  <command>``), each in its own process group so that a signal reaches the whole process.
The throwaway PostgreSQL and Redis servers a drill may stop are bench/_servers.py's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

STARTUP_TIMEOUT_S = 90.0
SIGTERM_GRACE_S = 30.0
LOG_TAIL_CHARS = 12_000

# Settings every process runs with: short leases and grace periods, so that a killed or
# stopped process is recovered from quickly; small pools, because the PostgreSQL server is shared.
BASE_ENV: dict[str, str] = {
    "GRAPHRUN_CHECKPOINTER": "postgres",
    "GRAPHRUN_LEASE_S": "3",
    "GRAPHRUN_HEARTBEAT_INTERVAL_S": "1",
    "GRAPHRUN_SHUTDOWN_GRACE_S": "2",
    "GRAPHRUN_POLL_INTERVAL_S": "0.5",
    "GRAPHRUN_SSE_KEEPALIVE_S": "1",
    "GRAPHRUN_WORKER_CONCURRENCY": "64",
    "GRAPHRUN_PG_POOL_MIN_SIZE": "1",
    "GRAPHRUN_PG_POOL_MAX_SIZE": "8",
    "GRAPHRUN_LOG_LEVEL": "INFO",
    "GRAPHRUN_LOG_FORMAT": "json",
    # Nothing in these tests may reach the network.
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (a server binds it right after; a race we accept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    """One command, started (and restarted) in its own process group, its output in ``log_dir``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    cwd: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        stdout = self._log_path("stdout").open("wb")
        stderr = self._log_path("stderr").open("wb")
        with stdout, stderr:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )

    def _log_path(self, stream: str) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.{stream}.log"

    def output(self, stream: str = "stdout") -> str:
        """What the current (last) start wrote on ``stream``."""
        path = self._log_path(stream)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until the process serves: ``/ready`` answers 200 for an API, the ``process_started`` log line
        for a worker. Raises with the process's output if it exits or takes longer."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(
                        f"{self.name} exited with code {self.returncode} during startup\n{self.logs()}"
                    )
                if self.port is None:
                    if '"process_started"' in self.output():
                        return
                else:
                    try:
                        r = http.get(f"{self.url}/ready")
                        if r.status_code == 200:
                            return
                        last = f"{r.status_code} {r.text[:300]}"
                    except httpx.TransportError as exc:
                        last = repr(exc)
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s (last: {last})\n{self.logs()}")

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code, or None if it still runs after ``timeout_s``."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, *, kill: bool = False) -> None:
        """SIGKILL at once if ``kill``; else SIGTERM, then SIGKILL after ``SIGTERM_GRACE_S``."""
        if self.popen is None:
            return
        if self.popen.poll() is None and not kill:
            self.signal(signal.SIGTERM)
            if self.wait_exit(SIGTERM_GRACE_S) is not None:
                return
        # Even after the leader exited, anything left in its group goes too.
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=SIGTERM_GRACE_S)

    def logs(self) -> str:
        parts: list[str] = []
        for path in sorted(self.log_dir.glob(f"{self.name}-*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if text.strip():
                parts.append(f"----- {path.name} -----\n{text[-LOG_TAIL_CHARS:]}")
        return "\n".join(parts) or f"({self.name} wrote nothing)"


@dataclass
class Procs:
    """Every process of a test (or a module); ``stop_all`` at teardown kills whatever is left."""

    log_dir: Path
    work_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def add(self, name: str, argv: list[str], env: Mapping[str, str], port: int | None = None) -> Proc:
        assert all(p.name != name for p in self.procs), f"duplicate process name {name}"
        proc = Proc(name, argv, dict(env), self.log_dir, self.work_dir, port)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM all at once, then SIGKILL what has not exited (every process, even if one fails)."""
        for proc in self.procs:
            if proc.alive:
                proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + SIGTERM_GRACE_S
        for proc in self.procs:
            if proc.popen is None:
                continue
            proc.wait_exit(max(0.0, deadline - time.monotonic()))
            proc.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.procs) or "(no process was started)"


def graphrun_argv(command: str, config: Path, port: int | None = None) -> list[str]:
    argv = [sys.executable, "-m", "graphrun", command, "--config", str(config)]
    if port is not None:
        argv += ["--host", "127.0.0.1", "--port", str(port)]
    return argv


def production_env(database_uri: str, redis_uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env.update(BASE_ENV)
    env.update({"DATABASE_URI": database_uri, "REDIS_URI": redis_uri})
    env.update(extra)
    return env


@dataclass
class Cluster:
    """``graphrun api`` and ``graphrun worker`` processes on one database and one Redis."""

    procs: Procs
    env: dict[str, str]
    config: Path  # the langgraph.json every process serves
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    def migrate(self) -> None:
        """``graphrun migrate``, to completion: it must exit 0."""
        proc = self.procs.add(
            f"migrate-{len(self.procs.procs)}", graphrun_argv("migrate", self.config), self.env
        )
        proc.start()
        code = proc.wait_exit(STARTUP_TIMEOUT_S)
        if code != 0:
            proc.stop(kill=True)
            raise RuntimeError(f"graphrun migrate ended with {code}\n{proc.logs()}")

    def add_api(self) -> Proc:
        port = free_port()
        name = f"api-{'ABCDEFGH'[len(self.apis)]}"
        proc = self.procs.add(name, graphrun_argv("api", self.config, port), self.env, port=port)
        self.apis.append(proc)
        return proc

    def add_worker(self) -> Proc:
        proc = self.procs.add(
            f"worker-{len(self.workers) + 1}", graphrun_argv("worker", self.config), self.env
        )
        self.workers.append(proc)
        return proc

    def ensure_running(self) -> None:
        """(Re)start every API and worker that is not running (an API on its port); wait until all serve."""
        started = []
        for proc in self.apis + self.workers:
            if not proc.alive:
                if proc.popen is not None:
                    proc.stop(kill=True)  # reap it, and anything left in its group
                proc.start()
                started.append(proc)
        for proc in started:
            proc.wait_ready()

    def client(self, api: int = 0) -> LangGraphClient:
        """An SDK client of API ``api``; use as ``async with cluster.client(1) as b``."""
        return get_client(url=self.apis[api].url, api_key=None, timeout=60.0)

    @property
    def worker_pids(self) -> dict[int, Proc]:
        return {w.pid: w for w in self.workers if w.alive}

    def logs(self) -> str:
        return self.procs.logs()
