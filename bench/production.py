"""Benchmark: production mode (PostgreSQL + Redis, separate ``graphrun api`` and ``graphrun worker``).

(A little over 400 lines, most of it this description: the processes, the background part and the report
are in ``bench/_production_*.py``; what stays is the command line and part 1.)

One invocation measures, on the trivial two-node graph of ``bench/trivial/``:

1. ``runs.wait`` on a new thread each (one request, ``if_not_exists="create"``, through ``langgraph_sdk``;
   for information also ``threads.create`` + ``runs.wait``, two requests timed as one operation)
   against ONE ``graphrun api`` and ONE ``graphrun worker`` process on a fresh PostgreSQL
   database (``GRAPHRUN_CHECKPOINTER=postgres``) and Redis, beside the raw ``graph.ainvoke`` of the same
   graph compiled with the stock ``AsyncPostgresSaver`` on a ``psycopg_pool`` pool (its own fresh
   database), at each concurrency level (default 16 and 64). Headline: graphrun/raw throughput, target
   at least 0.8 at every level.
2. ``--background-runs`` (default 1,000) background runs (``runs.create``, each on its own new thread)
   drained by 2 ``graphrun worker`` processes (+ the API): runs/s from the first run created to the last
   run finished (both server timestamps), and the queue wait of each run: its ``created_at`` to the
   timestamp of the first checkpoint it wrote (``source: input``, step -1), read from the thread's history.

Every result is checked (final state ``count == 2``, ``trail == ["a", "b"]``, run ``success``), so a broken
server cannot report numbers; the exit code is then 1. The script creates its databases and flushes its
Redis database itself, starts and stops (SIGTERM) every process, and drops the databases at the end.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

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
    run_level,
    spawn,
    stop,
    summarize,
)
from bench._production_background import bench_background  # noqa: E402
from bench._production_infra import (  # noqa: E402
    FIRST_RUN_TIMEOUT_S,
    STOP_GRACE_S,
    Monitor,
    count_checkpointed_threads,
    cpu_sample,
    cpu_used,
    flushed_redis,
    fresh_databases,
    guarded,
    migrate,
    parse_env,
    pg_connections,
    sdk_client,
    server_env,
    wait_ready,
    with_redis_db,
)
from bench._production_report import (  # noqa: E402
    HEADER,
    RAW,
    RAW_SYNC,
    SERVER,
    Background,
    print_background,
    print_cpu,
    print_row,
    print_server_output,
    print_verdict,
    verdict,
    write_json,
)

SERVER_TWO = "graphrun threads.create+runs.wait"

DEFAULT_DATABASE_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URI = "redis://127.0.0.1:6379"
DEFAULT_REDIS_DB = 11  # flushed: the tests use 15; pick a free one with --redis-db
RAW_POOL_MAX_SIZE = 20  # as the official docs' example, and graphrun's GRAPHRUN_PG_POOL_MAX_SIZE default
PACKAGES = (  # whose versions the JSON report records
    "langgraph",
    "langgraph-sdk",
    "langgraph-checkpoint-postgres",
    "psycopg",
    "psycopg-pool",
    "redis",
)

Graph = CompiledStateGraph[Any, Any, Any, Any]


# --- measurement ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One thing part 1 measures: its name, one operation, and how many to time per level."""

    name: str
    op: Op
    runs: int


async def measure_rounds(
    variants: Sequence[Variant], args: argparse.Namespace, processes: Mapping[str, int]
) -> list[Row]:
    """Warm every variant up (untimed), then ``--rounds`` rounds; in each, every level of every variant,
    back to back, with the CPU each used. The machine's speed drifts by more than the differences
    measured (raw alone moved by a fifth between two runs of this script), so a ratio compares the
    two variants of one round and the headline is the median of the rounds."""
    warmup = max(args.warmup, 1)
    for variant in variants:
        await run_level(variant.op, warmup, min(max(args.concurrency), warmup), args.max_seconds)
    rows = []
    for rnd in range(1, args.rounds + 1):
        for level in args.concurrency:
            for variant in variants:
                before = cpu_sample(processes)
                latencies, seconds = await run_level(variant.op, variant.runs, level, args.max_seconds)
                used = cpu_used(before, cpu_sample(processes))
                row = summarize(variant.name, level, latencies, seconds, variant.runs)
                row = Row(**{**asdict(row), "cpu": used, "round": rnd})
                print_row(row)
                rows.append(row)
    return rows


# --- raw baseline ---------------------------------------------------------------------------------------


def raw_op(graph: Graph, durability: str | None, variant: str) -> Op:
    """One raw run: ``ainvoke`` on a brand-new thread, result checked."""
    options: dict[str, Any] = {} if durability is None else {"durability": durability}

    async def op() -> None:
        config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
        TRIVIAL.check(await graph.ainvoke(TRIVIAL.input(), config, **options), variant)

    return op


@contextlib.asynccontextmanager
async def raw_variants(uri: str | None, args: argparse.Namespace) -> AsyncIterator[list[Variant]]:
    """The raw variants: the stock ``AsyncPostgresSaver`` on a pool, set up as the official docs show,
    on database ``uri`` (None: ``--skip-raw``, no variants). On exit, every measured run must have left
    its thread's checkpoints there."""
    if uri is None:
        yield []
        return
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(conninfo=uri, max_size=RAW_POOL_MAX_SIZE, kwargs=kwargs) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]  # the pool's rows are dicts (kwargs)
        await saver.setup()
        graph = load_builder(TRIVIAL.graph_file).compile(checkpointer=saver)
        variants = [Variant(RAW, raw_op(graph, None, RAW), args.raw_runs)]
        if args.raw_sync:
            variants.append(Variant(RAW_SYNC, raw_op(graph, "sync", RAW_SYNC), args.raw_runs))
        yield variants


# --- part 1: runs.wait ----------------------------------------------------------------------------------


def wait_op(client: LangGraphClient) -> Op:
    """One served run on a new thread, as raw ``ainvoke`` on a new ``thread_id``: ``runs.wait`` creates the
    thread (``if_not_exists="create"``) and the run in one request. Result checked."""

    async def op() -> None:
        thread_id = str(uuid.uuid4())
        values = await client.runs.wait(
            thread_id, TRIVIAL.assistant_id, input=TRIVIAL.input(), if_not_exists="create"
        )
        TRIVIAL.check(values, SERVER)

    return op


def two_request_op(client: LangGraphClient) -> Op:
    """The same, as a client that creates its thread first: ``threads.create`` + ``runs.wait``, timed
    together. For information."""

    async def op() -> None:
        thread = await client.threads.create()
        values = await client.runs.wait(thread["thread_id"], TRIVIAL.assistant_id, input=TRIVIAL.input())
        TRIVIAL.check(values, SERVER_TWO)

    return op


async def bench_wait(
    client: LangGraphClient, raw: Sequence[Variant], args: argparse.Namespace, processes: Mapping[str, int]
) -> list[Row]:
    """The first run with a time limit (a worker that never claims fails here), then the rounds, each
    with the raw variants just before graphrun's."""
    await asyncio.wait_for(wait_op(client)(), FIRST_RUN_TIMEOUT_S)
    variants = [*raw, Variant(SERVER, wait_op(client), args.runs)]
    if args.two_requests:
        variants.append(Variant(SERVER_TWO, two_request_op(client), args.runs))
    return await measure_rounds(variants, args, processes)


# --- the served parts -----------------------------------------------------------------------------------


async def bench_served(
    args: argparse.Namespace, env: Mapping[str, str], monitor: Monitor, raw: Sequence[Variant]
) -> tuple[list[Row], Background | None, dict[str, Any]]:
    """Migrate, start 1 api + 1 worker for part 1 (measured in rounds with the ``raw`` variants), add
    workers up to ``--workers`` for part 2, stop all. Returns the rows, part 2's figures, and extras:
    what each process logged (WARNING and above; the last lines) and the PostgreSQL connections open
    after each part."""
    await migrate(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    worker_command = ["worker", "--config", str(TRIVIAL.config_file)]
    processes = [
        await spawn("api", ["api", "--config", str(TRIVIAL.config_file), "--port", str(port)], env),
        await spawn("worker1", worker_command, env),
    ]
    client = sdk_client(url)
    rows: list[Row] = []
    background = None
    connections: dict[str, int] = {}
    try:
        await wait_ready(url, processes[0])
        if not args.skip_wait:
            pids = {p.name: p.proc.pid for p in processes}
            rows = await guarded(bench_wait(client, raw, args, pids), processes)
            connections["part 1"] = await pg_connections(monitor)
        elif raw:
            rows = await measure_rounds(raw, args, {p.name: p.proc.pid for p in processes})
        if args.background_runs:
            for i in range(2, args.workers + 1):
                processes.append(await spawn(f"worker{i}", worker_command, env))
            pids = {p.name: p.proc.pid for p in processes}
            background = await guarded(bench_background(client, args, pids), processes)
            connections["part 2"] = await pg_connections(monitor)
            print_background(background)
    except (httpx.HTTPError, LangGraphError) as exc:
        logs = "\n".join(f"--- {p.name}:\n{p.output()}" for p in processes)
        raise BenchError(f"request to {url} failed: {type(exc).__name__}: {exc}\n{logs}") from exc
    finally:
        await client.aclose()
        await stop(processes, STOP_GRACE_S)
    output = {p.name: [*p.tail][-p.lines :] if p.lines else [] for p in processes}
    return rows, background, {"server_output": output, "pg_connections": connections}


# --- entry point ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-uri",
        default=os.environ.get("GRAPHRUN_TEST_DATABASE_URI", DEFAULT_DATABASE_URI),
        help="PostgreSQL where two fresh databases are created and dropped (default: "
        "GRAPHRUN_TEST_DATABASE_URI or %(default)s)",
    )
    parser.add_argument(
        "--redis-uri",
        default=os.environ.get("REDIS_URI", DEFAULT_REDIS_URI),
        help="Redis server (default: REDIS_URI or %(default)s); its database index is replaced by --redis-db",
    )
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB, help="Redis db index, flushed")
    parser.add_argument("--runs", type=int, default=1000, help="graphrun runs.wait runs per level and round")
    parser.add_argument("--raw-runs", type=int, default=1000, help="raw ainvoke runs per level and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of part 1 (raw, then graphrun, each)")
    parser.add_argument("--concurrency", type=parse_levels, default=[16, 64], help="e.g. 16,64")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs before each variant")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop a level after this many s")
    parser.add_argument(
        "--no-raw-sync",
        dest="raw_sync",
        action="store_false",
        help="skip the raw durability=sync rows (information only)",
    )
    parser.add_argument(
        "--no-two-requests",
        dest="two_requests",
        action="store_false",
        help="skip the threads.create+runs.wait rows (information only)",
    )
    parser.add_argument("--background-runs", type=int, default=1000, help="part 2 runs; 0 skips part 2")
    parser.add_argument("--background-warmup", type=int, default=40, help="untimed part 2 runs first")
    parser.add_argument("--workers", type=int, default=2, help="graphrun worker processes in part 2")
    parser.add_argument("--create-concurrency", type=int, default=16, help="runs.create requests in flight")
    parser.add_argument("--skip-wait", action="store_true", help="skip part 1's graphrun rows")
    parser.add_argument("--skip-raw", action="store_true", help="skip part 1's raw rows")
    parser.add_argument(
        "--server-env",
        type=parse_env,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the graphrun processes (repeatable)",
    )
    parser.add_argument(
        "--asyncio-loop", action="store_true", help="run this script on asyncio's loop, not uvloop"
    )
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the databases at the end")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    counts = (args.runs, args.raw_runs, args.rounds, args.workers, args.create_concurrency)
    if min(*counts, args.background_warmup) < 1:
        parser.error(
            "--runs, --raw-runs, --rounds, --workers, --create-concurrency, --background-warmup must be >= 1"
        )
    if args.background_runs < 0 or args.max_seconds <= 0:
        parser.error("--background-runs must be >= 0 and --max-seconds positive")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], Background | None, dict[str, Any]]:
    """The raw baseline and graphrun's processes side by side (measured in turns); every database and
    Redis key is ours."""
    suffix = uuid.uuid4().hex[:8]
    names = [f"graphrun_bench_{suffix}", f"graphrun_bench_raw_{suffix}"]
    redis_uri = with_redis_db(args.redis_uri, args.redis_db)
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    async with fresh_databases(args.database_uri, names, args.keep_databases) as (server_db, raw_db):
        print(HEADER, flush=True)
        async with raw_variants(None if args.skip_raw else raw_db, args) as raw:
            if args.skip_wait and not args.background_runs:
                rows = await measure_rounds(raw, args, {})
                await check_raw(raw_db, rows)
                return rows, None, {}
            # Opened before graphrun's processes, which may take every connection the server allows.
            monitor = await psycopg.AsyncConnection.connect(server_db, autocommit=True)
            async with monitor, flushed_redis(redis_uri):
                env = server_env(args, server_db, redis_uri, workdir)
                rows, background, extra = await bench_served(args, env, monitor, raw)
                limit = await (await monitor.execute("SHOW max_connections")).fetchone()
                extra["pg_connections"]["max_connections"] = int(limit[0]) if limit else 0
                done = await count_checkpointed_threads(monitor)
        await check_raw(raw_db, rows)
        served = [r for r in rows if r.variant in (SERVER, SERVER_TWO)]
        wanted = sum(r.runs for r in served) + (background.runs if background else 0)
        if done < wanted:
            raise BenchError(
                f"graphrun: {wanted} runs checked but only {done} threads have checkpoints in PostgreSQL"
            )
    return rows, background, {**extra, "checkpointed_threads": done}


async def check_raw(uri: str, rows: Sequence[Row]) -> None:
    """Every raw run measured left its thread's checkpoints in the raw database."""
    wanted = sum(r.runs for r in rows if r.variant in (RAW, RAW_SYNC))
    if not wanted:
        return
    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as monitor:
        done = await count_checkpointed_threads(monitor)
    if done < wanted:
        raise BenchError(f"raw: {wanted} runs measured but only {done} threads have checkpoints")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it measured, 1 when it could not (the reason goes to stderr)."""
    args = parse_args(argv)
    where = environment(  # at the start: its load average is the one before the benchmark
        PACKAGES, loop="asyncio" if args.asyncio_loop else "uvloop", load_average_at_start=os.getloadavg()
    )
    runner: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run
    if not args.asyncio_loop:
        import uvloop

        runner = uvloop.run
    with tempfile.TemporaryDirectory(prefix="graphrun-bench-prod-") as tmp:
        try:
            rows, background, extra = runner(run(args, Path(tmp)))
        except (BenchError, psycopg.Error) as exc:
            print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    print_cpu(rows)
    summary = verdict(rows)
    print_verdict(summary)
    connections = extra.get("pg_connections", {})
    if connections:
        held = ", ".join(f"after {k} {v}" for k, v in connections.items() if k != "max_connections")
        print(
            f"PostgreSQL connections open on graphrun's database: {held} (server max_connections "
            f"{connections['max_connections']})"
        )
    print_server_output(extra.get("server_output", {}))
    if args.json:
        write_json(args.json, where, args, rows, background, {**summary, **extra})
    return 0


if __name__ == "__main__":
    sys.exit(main())
