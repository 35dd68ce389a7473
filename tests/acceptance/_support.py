"""A real graphrun process for the acceptance tests, and small helpers shared by the test modules.

The server is started exactly as a user would start it (``python -m graphrun dev``) with its SQLite files in a
temporary data directory; ``restart`` brings a new process up on the same directory and port.

Setting ``GRAPHRUN_ACCEPTANCE_OFFICIAL_CLI`` to the path of the official ``langgraph`` CLI (from
``pip install "langgraph-cli[inmem]"`` in another virtualenv) runs the same tests against the official
in-memory server instead, to check that a test encodes the official behaviour. Expected to fail there:
graphrun-only features (the data directory surviving a SIGKILL, ``/health``, ``/ready``), and places where
graphrun is stricter than official 0.16.7 (unknown run fields refused, 404 messages that name the thread or
run, history ``before`` given as a Checkpoint object, which official answers with a 500).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4, uuid5

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "langgraph.json"
GRAPH_IDS = (
    "echo",
    "counter",
    "interrupting",
    "failing",
    "slow",
    "factory",
    "nested",
    "slow_factory",
    "node_timeout",
    "tokens",
    "approval",
    "two_questions",
    "draft_and_sign",
)
# Namespace of the official server's system assistant ids (langgraph_api's NAMESPACE_GRAPH).
ASSISTANT_NAMESPACE = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
OFFICIAL_CLI_ENV = "GRAPHRUN_ACCEPTANCE_OFFICIAL_CLI"

STARTUP_TIMEOUT_S = 30.0
SIGTERM_GRACE_S = 10.0
LOG_TAIL_CHARS = 20_000

T = TypeVar("T")


def system_assistant_id(graph_id: str) -> str:
    return str(uuid5(ASSISTANT_NAMESPACE, graph_id))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def as_dict(value: object) -> dict[str, Any]:
    """Narrow an SDK result typed as ``list | dict`` (or ``Json``) to the JSON object it must be."""
    assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
    return cast(dict[str, Any], value)


def human(text: str) -> dict[str, Any]:
    """Input for the `echo` graph: one human message."""
    return {"messages": [{"role": "user", "content": text}]}


def unique() -> str:
    """A marker to put in metadata so that a test finds only what it created on the shared server."""
    return uuid4().hex


def status_of(exc: httpx.HTTPStatusError) -> int:
    """HTTP status of an SDK error (the SDK raises subclasses of ``httpx.HTTPStatusError``)."""
    return exc.response.status_code


def body_text(exc: httpx.HTTPStatusError) -> str:
    """The response body of an SDK error, for asserting on the server's message."""
    response = exc.response
    if not response.is_stream_consumed:
        response.read()
    return response.text


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout_s: float = 20.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``done(result)``; fail with the last result after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {result!r}")
        await asyncio.sleep(interval_s)


@dataclass
class Server:
    """One graphrun process at a time on ``port``, its data in ``data_dir``, its output in ``log_dir``."""

    config: Path
    data_dir: Path
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
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


EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "agent" / "langgraph.json"
PROVIDER_ENV_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENT_MODEL", "OPENAI_BASE_URL")
# The example agent's model is chosen by these (examples/agent/model.py): empty, it is the offline one.
OFFLINE_ENV = dict.fromkeys(PROVIDER_ENV_VARS, "")


@dataclass
class OfflineServer(Server):
    """A graphrun process without provider settings in its environment: the agent uses the offline model."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        for name in PROVIDER_ENV_VARS:
            env.pop(name, None)
        return env


@contextlib.contextmanager
def offline_server(
    factory: pytest.TempPathFactory,
    name: str,
    env: dict[str, str] | None = None,
    config: Path = EXAMPLE_CONFIG,
) -> Iterator[OfflineServer]:
    """An ``OfflineServer`` on ``config`` (the example agent by default) in a directory of its own,
    stopped on exit."""
    base = factory.mktemp(name)
    srv = OfflineServer(config=config, data_dir=base / "data", log_dir=base / "logs", extra_env=env or {})
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


async def slow_steps_done(client: LangGraphClient, thread_id: str, at_least: int) -> list[int]:
    """Wait until the ``slow`` graph on a thread has checkpointed at least ``at_least`` steps; return them."""
    state = await eventually(
        lambda: client.threads.get_state(thread_id),
        lambda s: len(as_dict(s["values"]).get("done", [])) >= at_least,
        what=f"{at_least} slow steps checkpointed",
    )
    done: list[int] = as_dict(state["values"])["done"]
    return done


def sse_events(lines: list[str]) -> list[tuple[str | None, str, str]]:
    """(id, event, raw data) of each complete SSE event in ``lines``, as an EventSource would parse them."""
    found: list[tuple[str | None, str, str]] = []
    event_id: str | None = None
    name, data = "", ""
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            found.append((event_id, name, data))
            event_id, name, data = None, "", ""
    return found
