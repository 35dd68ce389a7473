"""Benchmark: runs per second of a trivial graph, raw in-process versus served over the LangGraph Server API.

One invocation measures, at each concurrency level:

* ``raw``: ``graph.ainvoke`` on ``builder.compile(checkpointer=AsyncSqliteSaver)``, a new thread per call -
  the floor any runtime built on LangGraph + SQLite pays;
* ``server threads.create+runs.wait``: ``POST /threads`` then ``POST /threads/{id}/runs/wait`` through
  ``langgraph_sdk`` against a ``graphrun dev`` process this script starts (or ``--url``), the pair timed as
  one operation;
* ``server stateless runs.wait``: ``POST /runs/wait`` (the server makes and drops a temporary thread).

Every result is checked (``count == 2``), so a broken runtime cannot report fake numbers. The headline is
the server/raw throughput ratio at concurrency 16; the target is a ratio of at least 0.5.

Usage: ``.venv/bin/python bench/runs_wait.py [--runs N] [--raw-runs N] [--concurrency 1,16,64] [--url URL]
[--json PATH]``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
GRAPH_FILE = BENCH_DIR / "trivial" / "graph.py"
CONFIG_FILE = BENCH_DIR / "trivial" / "langgraph.json"
ASSISTANT_ID = "trivial"

RAW = "raw ainvoke+AsyncSqliteSaver"
SERVER_THREAD = "server threads.create+runs.wait"
SERVER_STATELESS = "server stateless runs.wait"

RATIO_CONCURRENCY = 16
TARGET_RATIO = 0.5
READY_TIMEOUT_S = 60.0
READY_POLL_S = 0.1
STOP_GRACE_S = 15.0
OUTPUT_TAIL_LINES = 200

Op = Callable[[], Awaitable[None]]
Graph = CompiledStateGraph[Any, Any, Any, Any]


class BenchError(Exception):
    """The benchmark cannot produce honest numbers (wrong result, server down); reported, then exit 1."""


@dataclass(frozen=True)
class Row:
    """One (variant, concurrency) measurement. Times in seconds / milliseconds, throughput in runs/s."""

    variant: str
    concurrency: int
    runs: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    capped: bool


# --- pure helpers ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``pct`` % of ``values`` at or below it.

    No interpolation, so the answer is always an observed latency. ``pct`` is in (0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < pct <= 100:
        raise ValueError(f"pct must be in (0, 100], not {pct}")
    ordered = sorted(values)
    rank = math.ceil(pct * len(ordered) / 100)
    return ordered[rank - 1]


def summarize(variant: str, concurrency: int, latencies: Sequence[float], seconds: float, wanted: int) -> Row:
    """Turn per-run latencies (s) and the wall time of the whole level (s) into a table row."""
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


def ratio_at(rows: Sequence[Row], server_variant: str, concurrency: int) -> float | None:
    """Server/raw throughput at ``concurrency``; ``None`` when either side was not measured there."""
    found = {(r.variant, r.concurrency): r.throughput for r in rows}
    raw, served = found.get((RAW, concurrency)), found.get((server_variant, concurrency))
    if raw is None or served is None:
        return None
    return served / raw


def fresh_input() -> dict[str, Any]:
    """A new input dict per run, so no run can see another's mutations."""
    return {"count": 0, "trail": []}


def check_result(result: object, variant: str) -> None:
    """Fail loudly unless ``result`` is the trivial graph's final state (``count == 2``, trail a, b)."""
    if not isinstance(result, dict) or result.get("count") != 2 or result.get("trail") != ["a", "b"]:
        raise BenchError(f"{variant}: unexpected result {str(result)[:300]}")


def parse_levels(text: str) -> list[int]:
    """``"1,16,64"`` -> ``[1, 16, 64]``; argparse type for ``--concurrency``."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be integers >= 1")
    return levels


def free_port() -> int:
    """A TCP port that was free a moment ago (the server binds it right after; a race we accept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- measurement ----------------------------------------------------------------------------------------


async def run_level(op: Op, runs: int, concurrency: int, max_seconds: float) -> tuple[list[float], float]:
    """Run ``op`` ``runs`` times with ``concurrency`` workers pulling from a shared counter.

    Returns the latency of each run (s) and the wall time of the level (s). Workers stop taking new runs
    after ``max_seconds`` so a very slow runtime cannot make the benchmark run for hours.
    """
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
            for _ in range(min(concurrency, runs)):
                group.create_task(worker())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return latencies, time.perf_counter() - begin


async def measure_variant(variant: str, op: Op, args: argparse.Namespace, runs: int) -> list[Row]:
    """Warm up (untimed), then measure ``op`` at every concurrency level, printing each row as it lands."""
    warmup = max(args.warmup, 1)
    await run_level(op, warmup, min(max(args.concurrency), warmup), args.max_seconds)
    rows = []
    for level in args.concurrency:
        latencies, seconds = await run_level(op, runs, level, args.max_seconds)
        row = summarize(variant, level, latencies, seconds, runs)
        print_row(row)
        rows.append(row)
    return rows


# --- raw baseline ---------------------------------------------------------------------------------------


def load_builder() -> StateGraph[Any, Any, Any, Any]:
    """Import ``bench/trivial/graph.py`` by path, as the server does, and return its ``builder``.

    The module is registered in ``sys.modules`` first: its ``from __future__ import annotations`` makes
    LangGraph resolve the state's type hints through the module's globals.
    """
    spec = importlib.util.spec_from_file_location("bench_trivial_graph", GRAPH_FILE)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {GRAPH_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    builder = getattr(module, "builder", None)
    if not isinstance(builder, StateGraph):
        raise BenchError(f"{GRAPH_FILE} has no StateGraph named 'builder'")
    return builder


def raw_op(graph: Graph) -> Op:
    """One raw run: ``ainvoke`` on a brand-new thread, result checked."""

    async def op() -> None:
        config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
        check_result(await graph.ainvoke(fresh_input(), config), RAW)

    return op


async def bench_raw(db_path: Path, args: argparse.Namespace) -> list[Row]:
    """Measure the in-process baseline on a fresh SQLite checkpoint file at ``db_path``."""
    async with AsyncSqliteSaver.from_conn_string(str(db_path)) as saver:
        graph = load_builder().compile(checkpointer=saver)
        return await measure_variant(RAW, raw_op(graph), args, args.raw_runs)


# --- server ---------------------------------------------------------------------------------------------


def thread_op(client: LangGraphClient) -> Op:
    """One served run on a new thread: ``threads.create`` + ``runs.wait``, timed together."""

    async def op() -> None:
        thread = await client.threads.create()
        result = await client.runs.wait(thread["thread_id"], ASSISTANT_ID, input=fresh_input())
        check_result(result, SERVER_THREAD)

    return op


def stateless_op(client: LangGraphClient) -> Op:
    """One stateless served run: ``runs.wait`` with no thread (the server uses a temporary one)."""

    async def op() -> None:
        check_result(await client.runs.wait(None, ASSISTANT_ID, input=fresh_input()), SERVER_STATELESS)

    return op


async def drain(stream: asyncio.StreamReader | None, tail: collections.deque[str]) -> None:
    """Keep reading the server's output so its pipe never fills; remember the last lines for errors."""
    if stream is None:
        return
    while line := await stream.readline():
        tail.append(line.decode(errors="replace").rstrip())


def output_of(tail: collections.deque[str]) -> str:
    """The remembered server output, for error messages."""
    return "\n".join(tail) or "(no output)"


async def start_server(data_dir: Path, port: int) -> asyncio.subprocess.Process:
    """Spawn ``graphrun dev`` on ``port`` with its SQLite files in ``data_dir``; stdout+stderr piped."""
    env = {
        **os.environ,
        "GRAPHRUN_DATA_DIR": str(data_dir),
        "GRAPHRUN_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    command = ["-m", "graphrun", "dev", "--config", str(CONFIG_FILE), "--port", str(port)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def wait_ready(url: str, proc: asyncio.subprocess.Process, tail: collections.deque[str]) -> None:
    """Poll ``GET /ok`` every 0.1 s until it answers 200; fail if the process exits or 60 s pass."""
    deadline = time.perf_counter() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            if proc.returncode is not None:
                await asyncio.sleep(0.2)  # let drain() collect the last lines
                raise BenchError(f"server exited early with code {proc.returncode}:\n{output_of(tail)}")
            try:
                if (await http.get(f"{url}/ok")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.perf_counter() > deadline:
                raise BenchError(f"server not ready after {READY_TIMEOUT_S:.0f} s:\n{output_of(tail)}")
            await asyncio.sleep(READY_POLL_S)


async def stop_server(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if the server is still alive after 15 s."""
    if proc.returncode is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
    except TimeoutError:
        print(f"server ignored SIGTERM for {STOP_GRACE_S:.0f} s; killing it", file=sys.stderr)
        proc.kill()
        await proc.wait()
    except ProcessLookupError:
        pass


async def measure_server(url: str, args: argparse.Namespace) -> list[Row]:
    """Measure both served variants against ``url`` with one SDK client."""
    client = get_client(url=url)
    try:
        rows = await measure_variant(SERVER_THREAD, thread_op(client), args, args.runs)
        rows += await measure_variant(SERVER_STATELESS, stateless_op(client), args, args.runs)
        return rows
    except (httpx.HTTPError, LangGraphError) as exc:
        raise BenchError(f"request to {url} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        await client.aclose()


async def bench_server(data_dir: Path, args: argparse.Namespace) -> list[Row]:
    """Measure against ``--url``, or start our own server in ``data_dir`` and always stop it afterwards."""
    if args.url:
        return await measure_server(args.url.rstrip("/"), args)
    port = free_port()
    proc = await start_server(data_dir, port)
    tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
    drainer = asyncio.create_task(drain(proc.stdout, tail))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc, tail)
        try:
            return await measure_server(url, args)
        except BenchError as exc:
            raise BenchError(f"{exc}\nlast server output:\n{output_of(tail)}") from exc
    finally:
        await stop_server(proc)
        drainer.cancel()


# --- reporting ------------------------------------------------------------------------------------------

HEADER = f"{'variant':<34}{'conc':>6}{'runs':>7}{'seconds':>10}{'runs/s':>10}{'p50 ms':>9}{'p99 ms':>9}"


def print_row(row: Row) -> None:
    """One table line; ``(time cap)`` marks a level stopped by ``--max-seconds`` before all runs were done."""
    mark = "  (time cap)" if row.capped else ""
    print(
        f"{row.variant:<34}{row.concurrency:>6}{row.runs:>7}{row.seconds:>10.2f}{row.throughput:>10.1f}"
        f"{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{mark}",
        flush=True,
    )


def verdict(rows: Sequence[Row]) -> dict[str, Any]:
    """Ratios server/raw at concurrency 16 and whether the headline one (new thread per run) meets 0.5."""
    ratios = {v: ratio_at(rows, v, RATIO_CONCURRENCY) for v in (SERVER_THREAD, SERVER_STATELESS)}
    headline = ratios[SERVER_THREAD]
    return {
        "ratio_concurrency": RATIO_CONCURRENCY,
        "ratios": ratios,
        "target_ratio": TARGET_RATIO,
        "target_met": None if headline is None else headline >= TARGET_RATIO,
    }


def print_verdict(summary: dict[str, Any]) -> None:
    """Print the ratios and the target line under the table."""
    print()
    for variant, ratio in summary["ratios"].items():
        shown = "n/a (not measured)" if ratio is None else f"{ratio:.2f}"
        print(f"ratio server/raw throughput at concurrency {RATIO_CONCURRENCY}, {variant}: {shown}")
    met = summary["target_met"]
    state = "UNKNOWN" if met is None else ("MET" if met else "NOT MET")
    print(f"target ({SERVER_THREAD} / raw >= {TARGET_RATIO}): {state}")


def environment() -> dict[str, Any]:
    """Where the numbers came from, for the JSON report."""
    versions = {pkg: importlib.metadata.version(pkg) for pkg in ("langgraph", "langgraph-sdk", "aiosqlite")}
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def write_json(path: Path, args: argparse.Namespace, rows: Sequence[Row], summary: dict[str, Any]) -> None:
    """Write settings, environment, every row and the verdict to ``path``."""
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    report = {
        "settings": settings,
        "environment": environment(),
        "rows": [asdict(r) for r in rows],
        **summary,
    }
    path.write_text(json.dumps(report, indent=2) + "\n")


# --- entry point ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; defaults keep a full run under about 3 minutes on 2 cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=400, help="server runs per concurrency level")
    parser.add_argument("--raw-runs", type=int, default=2000, help="raw runs per concurrency level")
    parser.add_argument("--concurrency", type=parse_levels, default=[1, 16, 64], help="e.g. 1,16,64")
    parser.add_argument("--url", help="benchmark this running server instead of starting one")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs before each variant")
    parser.add_argument(
        "--max-seconds", type=float, default=20.0, help="stop a level after this many seconds (s)"
    )
    parser.add_argument("--skip-server", action="store_true", help="measure the raw baseline only")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.raw_runs < 1:
        parser.error("--runs and --raw-runs must be at least 1")
    if args.max_seconds <= 0:
        parser.error("--max-seconds must be positive")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """Raw first, then the server (unless skipped); returns every row measured."""
    print(HEADER, flush=True)
    rows = await bench_raw(workdir / "raw.sqlite", args)
    if not args.skip_server:
        data_dir = workdir / "server-data"
        data_dir.mkdir()
        rows += await bench_server(data_dir, args)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it measured, 1 when it could not (the reason goes to stderr)."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphrun-bench-") as tmp:
        try:
            rows = asyncio.run(run(args, Path(tmp)))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    summary = verdict(rows)
    print_verdict(summary)
    if args.json:
        write_json(args.json, args, rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
