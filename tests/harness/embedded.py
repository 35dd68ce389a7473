"""``Server``: one real ``graphrun dev`` process, started exactly as a user would start it (``python -m
graphrun dev``) with its SQLite files in a data directory of its own; ``restart`` brings a new process up on
the same directory and port.

Setting ``GRAPHRUN_ACCEPTANCE_OFFICIAL_CLI`` to the path of the official ``langgraph`` CLI (from
``pip install "langgraph-cli[inmem]"`` in another virtualenv) runs the same tests against the official
in-memory server instead, to check that a test encodes the official behaviour. Expected to fail there:
graphrun-only features (the data directory surviving a SIGKILL, ``/health``, ``/ready``), and places where
graphrun is stricter than official 0.16.7 (unknown run fields refused, 404 messages that name the thread or
run, history ``before`` given as a Checkpoint object, which official answers with a 500).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.harness.ports import free_port

OFFICIAL_CLI_ENV = "GRAPHRUN_ACCEPTANCE_OFFICIAL_CLI"

STARTUP_TIMEOUT_S = 30.0
SIGTERM_GRACE_S = 10.0
LOG_TAIL_CHARS = 20_000


@dataclass
class Server:
    """One graphrun process at a time on ``port``, its data in ``data_dir``, its output in ``log_dir``."""

    config: Path
    data_dir: Path
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()  # taken out of the inherited environment (provider keys, say)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        official = os.environ.get(OFFICIAL_CLI_ENV)
        if official:
            # The official CLI resolves graph paths against its working directory (the data directory), so it
            # gets a copy of the config and the graphs there.
            for path in (self.config, *self.config.parent.glob("graphs*.py")):
                shutil.copy(path, self.data_dir / path.name)
            common = ["--config", str(self.data_dir / self.config.name), "--host", "127.0.0.1"]
            return [official, "dev", *common, "--port", str(self.port), "--no-browser", "--no-reload"]
        common = ["--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port)]
        return [sys.executable, "-m", "graphrun", "dev", *common]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "GRAPHRUN_DATA_DIR": str(self.data_dir),
                "GRAPHRUN_LOG_LEVEL": "WARNING",
                # Bounded SIGTERM drain so that teardown and restarts stay fast.
                "GRAPHRUN_SHUTDOWN_GRACE_S": "2",
                # Nothing in these tests may reach the network.
                "LANGSMITH_TRACING": "false",
                "LANGCHAIN_TRACING_V2": "false",
            }
        )
        env.update(self.extra_env)
        for name in self.unset_env:
            env.pop(name, None)
        return env

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        stdout = (self.log_dir / f"server-{self.starts}.stdout.log").open("wb")
        stderr = (self.log_dir / f"server-{self.starts}.stderr.log").open("wb")
        with stdout, stderr:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.data_dir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its own process group, so that a kill reaches any children too
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last: str = "no answer yet"
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"graphrun exited with code {self.proc.returncode} during startup\n{self.logs()}"
                    )
                try:
                    r = http.get("/ok")
                    if r.status_code == 200 and r.json().get("ok") is True:
                        return
                    last = f"{r.status_code} {r.text[:200]}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"graphrun not ready after {STARTUP_TIMEOUT_S}s (last: {last})\n{self.logs()}")

    def stop(self, *, kill: bool = False) -> bool:
        """SIGKILL at once if ``kill``; else SIGTERM, then SIGKILL after ``SIGTERM_GRACE_S``.

        Returns whether the process exited on its own after SIGTERM.
        """
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return True
        if not kill:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=SIGTERM_GRACE_S)
                return True
            except subprocess.TimeoutExpired:
                pass
        self._signal(proc, signal.SIGKILL)
        proc.wait(timeout=SIGTERM_GRACE_S)
        return False

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The group we created with start_new_session, whose id is proc.pid.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def restart(self, *, kill: bool = False) -> bool:
        """Stop (see ``stop``) and start again on the same data directory and port."""
        graceful = self.stop(kill=kill)
        self.start()
        return graceful

    def client(self) -> LangGraphClient:
        """A new SDK client; use as ``async with server.client() as client``."""
        return get_client(url=self.url, api_key=None, timeout=30.0)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self) -> str:
        parts: list[str] = []
        for path in sorted(self.log_dir.glob("server-*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if text.strip():
                parts.append(f"----- {path.name} -----\n{text[-LOG_TAIL_CHARS:]}")
        return "\n".join(parts) or "(the server wrote nothing)"


@contextlib.contextmanager
def embedded(
    base: Path, config: Path, extra_env: Mapping[str, str] | None = None, *, unset_env: tuple[str, ...] = ()
) -> Iterator[Server]:
    """A started ``Server`` serving ``config`` with ``extra_env`` (and without ``unset_env``), its data and
    logs under ``base``; stopped on exit."""
    server = Server(
        config=config,
        data_dir=base / "data",
        log_dir=base / "logs",
        extra_env=dict(extra_env or {}),
        unset_env=unset_env,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
