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
import json
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # bench/_common.py

from bench._cluster import free_port  # noqa: E402
from bench._common import (  # noqa: E402
    TRIVIAL,
    BenchError,
    Op,
    Row,
    environment,
    load_builder,
    parse_levels,
    run_in_temp_dir,
    run_level,
    spawn,
    stop,
    summarize,
    wait_ok,
)

RAW = "raw ainvoke+AsyncSqliteSaver"
SERVER_THREAD = "server threads.create+runs.wait"
SERVER_STATELESS = "server stateless runs.wait"

RATIO_CONCURRENCY = 16
TARGET_RATIO = 0.5
STOP_GRACE_S = 15.0

Graph = CompiledStateGraph[Any, Any, Any, Any]


def ratio_at(rows: Sequence[Row], server_variant: str, concurrency: int) -> float | None:
    """Server/raw throughput at ``concurrency``; ``None`` when either side was not measured there."""
    found = {(r.variant, r.concurrency): r.throughput for r in rows}
    raw, served = found.get((RAW, concurrency)), found.get((server_variant, concurrency))
    if raw is None or served is None:
        return None
    return served / raw


# --- measurement ----------------------------------------------------------------------------------------


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


def raw_op(graph: Graph) -> Op:
    """One raw run: ``ainvoke`` on a brand-new thread, result checked."""

    async def op() -> None:
        config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
        TRIVIAL.check(await graph.ainvoke(TRIVIAL.input(), config), RAW)

    return op


async def bench_raw(db_path: Path, args: argparse.Namespace) -> list[Row]:
    """Measure the in-process baseline on a fresh SQLite checkpoint file at ``db_path``."""
    async with AsyncSqliteSaver.from_conn_string(str(db_path)) as saver:
        graph = load_builder(TRIVIAL.graph_file).compile(checkpointer=saver)
        return await measure_variant(RAW, raw_op(graph), args, args.raw_runs)


# --- server ---------------------------------------------------------------------------------------------


def thread_op(client: LangGraphClient) -> Op:
    """One served run on a new thread: ``threads.create`` + ``runs.wait``, timed together."""

    async def op() -> None:
        thread = await client.threads.create()
        result = await client.runs.wait(thread["thread_id"], TRIVIAL.assistant_id, input=TRIVIAL.input())
        TRIVIAL.check(result, SERVER_THREAD)

    return op


def stateless_op(client: LangGraphClient) -> Op:
    """One stateless served run: ``runs.wait`` with no thread (the server uses a temporary one)."""

    async def op() -> None:
        TRIVIAL.check(
            await client.runs.wait(None, TRIVIAL.assistant_id, input=TRIVIAL.input()), SERVER_STATELESS
        )

    return op


def server_env(data_dir: Path) -> dict[str, str]:
    """``graphrun dev`` with its SQLite files in ``data_dir``."""
    return {
        **os.environ,
        "GRAPHRUN_DATA_DIR": str(data_dir),
        "GRAPHRUN_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


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
    command = ["dev", "--config", str(TRIVIAL.config_file), "--port", str(port)]
    server = await spawn("server", command, server_env(data_dir))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ok(url, server)
        try:
            return await measure_server(url, args)
        except BenchError as exc:
            raise BenchError(f"{exc}\nlast server output:\n{server.output()}") from exc
    finally:
        await stop([server], STOP_GRACE_S)


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


def write_json(path: Path, args: argparse.Namespace, rows: Sequence[Row], summary: dict[str, Any]) -> None:
    """Write settings, environment, every row and the verdict to ``path``."""
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    report = {
        "settings": settings,
        "environment": environment(("langgraph", "langgraph-sdk", "aiosqlite")),
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
    rows = run_in_temp_dir(lambda workdir: run(args, workdir), "graphrun-bench-")
    if rows is None:
        return 1
    summary = verdict(rows)
    print_verdict(summary)
    if args.json:
        write_json(args.json, args, rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
