"""What the benchmarks share: the error that stops one, a measured row, nearest-rank percentiles, a level
of concurrent operations, the trivial graph's builder, graphrun processes started and stopped, and where
the numbers came from.

A script imports it as ``bench._common`` after putting the repository's root on ``sys.path`` (scripts
are run as ``python bench/<name>.py``); ``free_port`` and the production deployment on loopback are
bench/_cluster.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from langgraph.graph import StateGraph

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
READY_TIMEOUT_S = 60.0
READY_POLL_S = 0.1
OUTPUT_TAIL_LINES = 200

T = TypeVar("T")
Op = Callable[[], Awaitable[None]]


class BenchError(Exception):
    """The benchmark cannot produce honest numbers (wrong result, a process died); reported, then exit 1."""


@dataclass(frozen=True)
class Row:
    """One (variant, concurrency) measurement. Times in seconds / milliseconds, throughput in runs/s;
    ``cpu`` is CPU seconds used during the level and ``round`` the round it was measured in, where the
    benchmark records them."""

    variant: str
    concurrency: int
    runs: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    capped: bool
    cpu: dict[str, float] = field(default_factory=dict)
    round: int = 1


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``pct`` % of ``values`` at or below it.

    No interpolation, so the answer is always an observed value. ``pct`` is in (0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < pct <= 100:
        raise ValueError(f"pct must be in (0, 100], not {pct}")
    ordered = sorted(values)
    return ordered[math.ceil(pct * len(ordered) / 100) - 1]


def summarize(variant: str, concurrency: int, latencies: Sequence[float], seconds: float, wanted: int) -> Row:
    """Per-run latencies (s) and the level's wall time (s) -> a table row."""
    return Row(
        variant=variant,
        concurrency=concurrency,
        runs=len(latencies),
        seconds=seconds,
        throughput=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        capped=len(latencies) < wanted,
    )


def parse_levels(text: str) -> list[int]:
    """``"1,16,64"`` -> ``[1, 16, 64]``; argparse type for ``--concurrency``."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be integers >= 1")
    return levels


async def run_level(op: Op, runs: int, concurrency: int, max_seconds: float) -> tuple[list[float], float]:
    """Run ``op`` ``runs`` times with ``concurrency`` workers pulling from a shared counter; returns each
    run's latency (s) and the level's wall time (s). No new run starts after ``max_seconds``, so a very
    slow runtime cannot make the benchmark run for hours."""
    latencies: list[float] = []
    taken = 0
    begin = time.perf_counter()
    deadline = begin + max_seconds

    async def worker() -> None:
        nonlocal taken
        while taken < runs and time.perf_counter() < deadline:
            taken += 1
            start = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - start)

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(min(concurrency, runs)):
                group.create_task(worker(), name=f"bench-op-{i}")
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return latencies, time.perf_counter() - begin


@dataclass(frozen=True)
class TrivialGraph:
    """``bench/trivial/``: a two-node graph that does no work, so a run of it costs only the runtime's
    overhead; a new input per run, and the check of its final state."""

    graph_file: Path = BENCH_DIR / "trivial" / "graph.py"
    config_file: Path = BENCH_DIR / "trivial" / "langgraph.json"
    assistant_id: str = "trivial"

    @staticmethod
    def input() -> dict[str, Any]:
        """A new input per run, so no run can see another's mutations."""
        return {"count": 0, "trail": []}

    @staticmethod
    def check(values: object, what: str) -> None:
        """Fail loudly unless ``values`` is the final state (``count == 2``, trail a, b)."""
        if not isinstance(values, dict) or values.get("count") != 2 or values.get("trail") != ["a", "b"]:
            raise BenchError(f"{what}: unexpected result {str(values)[:300]}")


TRIVIAL = TrivialGraph()


def load_builder(graph_file: Path) -> StateGraph[Any, Any, Any, Any]:
    """Import ``graph_file`` by path, as the server does, and return its ``builder``.

    The module is registered in ``sys.modules`` first: its ``from __future__ import annotations`` makes
    LangGraph resolve the state's type hints through the module's globals.
    """
    spec = importlib.util.spec_from_file_location(f"bench_{graph_file.parent.name}_graph", graph_file)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {graph_file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    builder = getattr(module, "builder", None)
    if not isinstance(builder, StateGraph):
        raise BenchError(f"{graph_file} has no StateGraph named 'builder'")
    return builder


# --- graphrun processes ---------------------------------------------------------------------------------


@dataclass
class Process:
    """A graphrun process a benchmark started, its output drained so its pipe never fills."""

    name: str
    proc: asyncio.subprocess.Process
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=OUTPUT_TAIL_LINES))
    lines: int = 0
    drainer: asyncio.Task[None] | None = None

    def output(self) -> str:
        return "\n".join(self.tail) or "(no output)"


async def spawn(name: str, command: Sequence[str], env: Mapping[str, str]) -> Process:
    """Start ``<python> -m graphrun <command>`` with ``env``; stdout and stderr are read into a tail."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graphrun",
        *command,
        cwd=REPO_ROOT,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    process = Process(name, proc)

    async def drain() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            process.lines += 1
            process.tail.append(line.decode(errors="replace").rstrip())

    process.drainer = asyncio.create_task(drain(), name=f"drain-{name}")
    return process


async def wait_ok(url: str, process: Process) -> None:
    """Poll ``GET /ok`` every 0.1 s until it answers 200; fail if the process exits or 60 s pass."""
    deadline = time.perf_counter() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            if process.proc.returncode is not None:
                await asyncio.sleep(0.2)  # let the drainer collect the last lines
                code = process.proc.returncode
                raise BenchError(f"{process.name} exited early with code {code}:\n{process.output()}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{url}/ok")).status_code == 200:
                    return
            if time.perf_counter() > deadline:
                raise BenchError(
                    f"{process.name} not answering /ok after {READY_TIMEOUT_S:.0f} s:\n{process.output()}"
                )
            await asyncio.sleep(READY_POLL_S)


async def stop(processes: Sequence[Process], grace_s: float) -> None:
    """SIGTERM every process, then SIGKILL any still running after ``grace_s``."""
    for p in processes:
        if p.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            await asyncio.wait_for(p.proc.wait(), grace_s)
        except TimeoutError:
            print(f"{p.name} ignored SIGTERM for {grace_s:.0f} s; killing it", file=sys.stderr)
            p.proc.kill()
            await p.proc.wait()
        if p.drainer:  # the pipe ends with the process: collect its last lines
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.drainer, 5.0)


# --- reports --------------------------------------------------------------------------------------------


def environment(packages: Sequence[str], **extra: Any) -> dict[str, Any]:
    """Where the numbers came from, for the JSON report: the machine, Python and ``packages``' versions."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        **extra,
        "versions": {pkg: importlib.metadata.version(pkg) for pkg in packages},
    }


def run_in_temp_dir(run: Callable[[Path], Coroutine[Any, Any, T]], prefix: str) -> T | None:
    """``run`` in a temporary directory, removed afterwards; None, with the reason on stderr, when the
    benchmark could not produce honest numbers (``BenchError``)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            return asyncio.run(run(Path(tmp)))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return None
