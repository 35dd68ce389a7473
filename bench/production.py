"""Benchmark: production mode (PostgreSQL + Redis, separate ``graphrun api`` and ``graphrun worker``).

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
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import LangGraphError
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # bench/_common.py

from bench._cluster import free_port  # noqa: E402
from bench._common import (  # noqa: E402
    TRIVIAL,
    BenchError,
    Op,
    Process,
    Row,
    environment,
    load_builder,
    parse_levels,
    percentile,
    run_level,
    spawn,
    stop,
    summarize,
    wait_ok,
)

RAW = "raw ainvoke+AsyncPostgresSaver"
RAW_SYNC = "raw ainvoke+AsyncPostgresSaver sync"
SERVER = "graphrun runs.wait, new thread"
SERVER_TWO = "graphrun threads.create+runs.wait"

DEFAULT_DATABASE_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URI = "redis://127.0.0.1:6379"
DEFAULT_REDIS_DB = 11  # flushed: the tests use 15; pick a free one with --redis-db
TARGET_RATIO = 0.8
RAW_POOL_MAX_SIZE = 20  # as the official docs' example, and graphrun's GRAPHRUN_PG_POOL_MAX_SIZE default
MIGRATE_TIMEOUT_S = 120.0
FIRST_RUN_TIMEOUT_S = 60.0  # the first run through a new worker (graph import, pools opening)
STOP_GRACE_S = 30.0  # above the worker's GRAPHRUN_SHUTDOWN_GRACE_S default (20 s)
SHOWN_OUTPUT_LINES = 10  # per process, at the end
NOISE_SHARE = 0.10  # of the CPUs, used by other processes during a level, above which it is marked
REQUEST_TIMEOUT_S = 120.0
HISTORY_LIMIT = 50  # checkpoints read back per thread (a run without retries writes 4)
CHECK_CONCURRENCY = 16  # requests in flight while reading back the background runs (untimed)
PACKAGES = (  # whose versions the JSON report records
    "langgraph",
    "langgraph-sdk",
    "langgraph-checkpoint-postgres",
    "psycopg",
    "psycopg-pool",
    "redis",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")
Graph = CompiledStateGraph[Any, Any, Any, Any]


@dataclass(frozen=True)
class Background:
    """Part 2: background runs drained by the workers. Times in seconds, latencies in milliseconds."""

    runs: int
    workers: int
    create_concurrency: int
    create_seconds: float
    window_seconds: float
    throughput: float
    queue_wait_p50_ms: float
    queue_wait_p99_ms: float
    queue_wait_max_ms: float
    execution_p50_ms: float
    execution_p99_ms: float
    end_to_end_p50_ms: float
    end_to_end_p99_ms: float
    retried_runs: int  # attempted more than once (a lease lost, a worker gone)
    restarted_runs: int  # executed from their input more than once
    cpu: dict[str, float] = field(default_factory=dict)


# --- pure helpers ---------------------------------------------------------------------------------------


def round_ratios(rows: Sequence[Row], raw_variant: str) -> dict[int, list[float]]:
    """graphrun/raw throughput of each round, at every concurrency level where both were measured in it
    (the two measured back to back, so that both met the machine in the same state)."""
    found = {(r.variant, r.concurrency, r.round): r.throughput for r in rows}
    by_level: dict[int, list[float]] = {}
    for variant, level, rnd in found:
        if variant == SERVER and (raw_variant, level, rnd) in found:
            ratio = found[(SERVER, level, rnd)] / found[(raw_variant, level, rnd)]
            by_level.setdefault(level, []).append(ratio)
    return by_level


def ratios(rows: Sequence[Row], raw_variant: str) -> dict[int, float]:
    """The median of each level's per-round ratios."""
    return {level: statistics.median(found) for level, found in round_ratios(rows, raw_variant).items()}


def parse_env(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)``; argparse type for ``--server-env``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def with_database(uri: str, dbname: str) -> str:
    """``uri`` (a postgresql:// URL or a key=value string) pointing at database ``dbname`` instead."""
    if "://" in uri:
        return urlunsplit(urlsplit(uri)._replace(path=f"/{dbname}"))
    return psycopg.conninfo.make_conninfo(uri, dbname=dbname)


def with_redis_db(uri: str, db: int) -> str:
    """``uri`` with its database index replaced by ``db``."""
    return urlunsplit(urlsplit(uri)._replace(path=f"/{db}"))


def parse_time(value: object, what: str) -> datetime:
    """An ISO-8601 timestamp from the API, as an aware datetime."""
    if not isinstance(value, str):
        raise BenchError(f"{what}: expected an ISO timestamp, got {value!r}")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- CPU accounting -------------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU time (s) of process ``pid`` from ``/proc``; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pids_named(name: str) -> list[int]:
    """Processes whose ``comm`` is ``name`` (PostgreSQL backends, the Redis server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


def machine_busy_s() -> float:
    """CPU time (s) all CPUs spent not idle since boot, from ``/proc/stat``."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLK_TCK


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used so far by each thing we watch (a point in time; subtract two)."""

    own: dict[str, float]  # "bench" and our graphrun processes, by name
    postgres: dict[int, float]
    redis: dict[int, float]
    machine: float


def cpu_sample(processes: Mapping[str, int]) -> CpuSample:
    """Sample this process, the named graphrun processes, PostgreSQL, Redis and the whole machine."""
    own = {"bench": time.process_time()}
    for name, pid in processes.items():
        own[name] = proc_cpu_s(pid) or 0.0
    return CpuSample(
        own=own,
        postgres={pid: proc_cpu_s(pid) or 0.0 for pid in pids_named("postgres")},
        redis={pid: proc_cpu_s(pid) or 0.0 for pid in pids_named("redis-server")},
        machine=machine_busy_s(),
    )


def cpu_used(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds between two samples. A PostgreSQL backend that started in between counts whole; one that
    exited in between is lost (the pools keep theirs open). ``other`` is whatever else ran on the machine."""
    used = {name: after.own[name] - before.own.get(name, 0.0) for name in after.own}
    for kind, a, b in (("postgres", before.postgres, after.postgres), ("redis", before.redis, after.redis)):
        used[kind] = sum(cpu - a.get(pid, 0.0) for pid, cpu in b.items())
    used["machine"] = after.machine - before.machine
    used["other"] = max(0.0, used["machine"] - sum(v for k, v in used.items() if k != "machine"))
    return used


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


# --- databases ------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_databases(base_uri: str, names: Sequence[str], keep: bool) -> AsyncIterator[list[str]]:
    """Create databases ``names`` next to ``base_uri``'s; yield their URIs; drop them on exit (unless
    ``keep``). ``WITH (FORCE)`` ends connections a killed process may have left behind."""
    try:
        admin = await psycopg.AsyncConnection.connect(base_uri, autocommit=True)
    except psycopg.Error as exc:
        raise BenchError(
            f"PostgreSQL at {base_uri} is unreachable ({exc}); start it or pass --database-uri "
            "(or GRAPHRUN_TEST_DATABASE_URI)"
        ) from exc
    async with admin:
        for name in names:
            await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield [with_database(base_uri, name) for name in names]
        finally:
            if not keep:
                for name in names:
                    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    await admin.execute(drop)


Monitor = psycopg.AsyncConnection[Any]


async def pg_connections(monitor: Monitor) -> int:
    """Connections open on ``monitor``'s database, not counting ``monitor``."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    row = await (await monitor.execute(query)).fetchone()
    return int(row[0]) if row else 0


async def count_checkpointed_threads(monitor: Monitor) -> int:
    """How many threads have checkpoints in the official saver's table of ``monitor``'s database."""
    try:
        row = await (await monitor.execute("SELECT count(DISTINCT thread_id) FROM checkpoints")).fetchone()
    except psycopg.errors.UndefinedTable as exc:
        raise BenchError(
            f"no checkpoints table in {monitor.info.dbname}: the checkpointer did not use it"
        ) from exc
    return int(row[0]) if row else 0


@contextlib.asynccontextmanager
async def flushed_redis(uri: str) -> AsyncIterator[None]:
    """Flush Redis database ``uri`` before and after the benchmark."""
    client: Redis = Redis.from_url(uri)
    try:
        await client.flushdb()
    except (OSError, RedisError) as exc:
        await client.aclose()
        raise BenchError(f"Redis at {uri} is unreachable ({exc}); start it or pass --redis-uri") from exc
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await client.flushdb()
        await client.aclose()


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


# --- graphrun processes ---------------------------------------------------------------------------------


def server_env(args: argparse.Namespace, database_uri: str, redis_uri: str, data_dir: Path) -> dict[str, str]:
    """The environment of every graphrun process: ours, none inherited from the shell (``GRAPHRUN_*``,
    ``DATABASE_URI``, ``REDIS_URI``), then ``--server-env``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GRAPHRUN_") and k not in ("DATABASE_URI", "REDIS_URI")
    }
    env.update(
        DATABASE_URI=database_uri,
        REDIS_URI=redis_uri,
        GRAPHRUN_CHECKPOINTER="postgres",
        GRAPHRUN_DATA_DIR=str(data_dir),
        GRAPHRUN_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(dict(args.server_env))
    return env


async def migrate(env: Mapping[str, str]) -> None:
    """``graphrun migrate``; it must exit 0."""
    process = await spawn("migrate", ["migrate", "--config", str(TRIVIAL.config_file)], env)
    try:
        code = await asyncio.wait_for(process.proc.wait(), MIGRATE_TIMEOUT_S)
    except TimeoutError as exc:
        await stop([process], STOP_GRACE_S)
        raise BenchError(f"graphrun migrate still running after {MIGRATE_TIMEOUT_S:.0f} s") from exc
    if process.drainer:
        await process.drainer
    if code != 0:
        raise BenchError(f"graphrun migrate exited with code {code}:\n{process.output()}")


async def wait_ready(url: str, api: Process) -> None:
    """Wait until ``GET /ok`` answers 200, then require ``GET /ready`` to be 200 (every dependency ok)."""
    await wait_ok(url, api)
    async with httpx.AsyncClient(timeout=5.0) as http:
        ready = await http.get(f"{url}/ready")
    if ready.status_code != 200:
        raise BenchError(f"/ready answered {ready.status_code}: {ready.text}")


async def guarded(work: Coroutine[Any, Any, T], processes: Sequence[Process]) -> T:
    """Await ``work``, but fail at once, with its output, if one of ``processes`` exits meanwhile."""
    task = asyncio.create_task(work, name="bench-work")
    deaths = {asyncio.create_task(p.proc.wait(), name=f"watch-{p.name}"): p for p in processes}
    try:
        done, _ = await asyncio.wait([task, *deaths], return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        dead = next(p for watcher, p in deaths.items() if watcher in done)
        await asyncio.sleep(0.2)  # let the drainer collect the last lines
        raise BenchError(
            f"{dead.name} exited with code {dead.proc.returncode} mid-benchmark:\n{dead.output()}"
        )
    finally:
        for watcher in deaths:
            watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def sdk_client(url: str) -> LangGraphClient:
    """An SDK client with a bounded read timeout, so a hung server fails the benchmark instead of hanging."""
    return get_client(
        url=url, timeout=(10.0, REQUEST_TIMEOUT_S, REQUEST_TIMEOUT_S, 10.0)
    )  # connect, read, write, pool


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


# --- part 2: background runs ----------------------------------------------------------------------------


async def bounded(items: Sequence[T], concurrency: int, fn: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """``fn`` over ``items`` with at most ``concurrency`` in flight; results in the order of ``items``."""
    results: list[Any] = [None] * len(items)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items):
            i = next_index
            next_index += 1
            results[i] = await fn(items[i])

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(min(concurrency, len(items))):
                group.create_task(worker(), name=f"bench-bounded-{i}")
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return results


async def new_threads(client: LangGraphClient, count: int) -> list[str]:
    """``count`` new threads (untimed)."""
    created = await bounded(range(count), CHECK_CONCURRENCY, lambda _: client.threads.create())
    return [t["thread_id"] for t in created]


async def finished_run(client: LangGraphClient, thread_id: str, run_id: str) -> dict[str, Any]:
    """The run once it has finished (joined if it has not), checked ``success``."""
    run: dict[str, Any] = dict(await client.runs.get(thread_id, run_id))
    if run["status"] in ("pending", "running"):
        await client.runs.join(thread_id, run_id)
        run = dict(await client.runs.get(thread_id, run_id))
    if run["status"] != "success":
        raise BenchError(f"background run {run_id} ended {run['status']}: {str(run)[:300]}")
    return run


@dataclass(frozen=True)
class Execution:
    """One background run read back: server timestamps, and how many times it was attempted."""

    created: datetime
    started: datetime
    finished: datetime
    attempts: int
    input_checkpoints: int


async def read_back(client: LangGraphClient, thread_id: str, run_id: str) -> Execution:
    """The run, finished and checked ``success``, and its thread's history, final values checked.

    It began executing at the timestamp of the first checkpoint it wrote (``source: input``, step -1;
    LangGraph stamps it when the graph's loop takes the input). Its attempts are the highest
    ``run_attempt`` graphrun put in its checkpoints' metadata; more than one input checkpoint means it
    was executed from the start more than once."""
    run = await finished_run(client, thread_id, run_id)
    history = await client.threads.get_history(thread_id, limit=HISTORY_LIMIT)
    if not history:
        raise BenchError(f"thread {thread_id} has no history")
    TRIVIAL.check(history[0]["values"], f"background run {run_id}")
    mine = [s for s in history if (s["metadata"] or {}).get("run_id") == run_id]
    inputs = [s for s in mine if (s["metadata"] or {}).get("source") == "input"]
    if not inputs:
        raise BenchError(f"thread {thread_id}: no input checkpoint of run {run_id} in {str(history)[:300]}")
    attempts = max(int((s["metadata"] or {}).get("run_attempt") or 1) for s in mine)
    return Execution(
        created=parse_time(run["created_at"], run_id),
        started=parse_time(inputs[-1]["created_at"], f"checkpoint of run {run_id}"),  # newest first
        finished=parse_time(run["updated_at"], run_id),
        attempts=attempts,
        input_checkpoints=len(inputs),
    )


async def drain_background(
    client: LangGraphClient, thread_ids: Sequence[str], concurrency: int
) -> tuple[list[tuple[str, str]], float]:
    """Create one run per thread (``concurrency`` requests in flight), then wait until the last one
    created has finished. Returns (thread, run) ids and the client time the creates took (s)."""
    begin = time.perf_counter()

    async def create(thread_id: str) -> tuple[str, str, datetime]:
        run = await client.runs.create(thread_id, TRIVIAL.assistant_id, input=TRIVIAL.input())
        return thread_id, run["run_id"], parse_time(run["created_at"], "runs.create")

    created: list[tuple[str, str, datetime]] = await bounded(thread_ids, concurrency, create)
    create_seconds = time.perf_counter() - begin
    last_thread, last_run, _ = max(created, key=lambda c: c[2])
    await client.runs.join(last_thread, last_run)  # the claim order is oldest first
    return [(t, r) for t, r, _ in created], create_seconds


async def bench_background(
    client: LangGraphClient, args: argparse.Namespace, processes: Mapping[str, int]
) -> Background:
    """Part 2: warm every worker up, then time ``--background-runs`` runs from first created to last
    finished, and read every run back (untimed) to check it and compute its queue wait."""
    warm = await new_threads(client, args.background_warmup)
    await asyncio.wait_for(drain_background(client, warm, args.create_concurrency), FIRST_RUN_TIMEOUT_S)
    thread_ids = await new_threads(client, args.background_runs)
    before = cpu_sample(processes)
    ids, create_seconds = await drain_background(client, thread_ids, args.create_concurrency)
    used = cpu_used(before, cpu_sample(processes))

    async def check(pair: tuple[str, str]) -> Execution:
        return await read_back(client, *pair)

    runs: list[Execution] = await bounded(ids, CHECK_CONCURRENCY, check)
    window = (max(r.finished for r in runs) - min(r.created for r in runs)).total_seconds()
    queue = [(r.started - r.created).total_seconds() for r in runs]
    execution = [(r.finished - r.started).total_seconds() for r in runs]
    end_to_end = [(r.finished - r.created).total_seconds() for r in runs]
    return Background(
        runs=len(runs),
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        create_seconds=create_seconds,
        window_seconds=window,
        throughput=len(runs) / window,
        retried_runs=sum(r.attempts > 1 for r in runs),
        restarted_runs=sum(r.input_checkpoints > 1 for r in runs),
        queue_wait_p50_ms=percentile(queue, 50) * 1000,
        queue_wait_p99_ms=percentile(queue, 99) * 1000,
        queue_wait_max_ms=max(queue) * 1000,
        execution_p50_ms=percentile(execution, 50) * 1000,
        execution_p99_ms=percentile(execution, 99) * 1000,
        end_to_end_p50_ms=percentile(end_to_end, 50) * 1000,
        end_to_end_p99_ms=percentile(end_to_end, 99) * 1000,
        cpu=used,
    )


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


# --- reporting ------------------------------------------------------------------------------------------

LEAD = "{:<36}{:>6}{:>6}"  # variant, round, concurrency
HEADER = LEAD.format("variant", "round", "conc") + "{:>7}{:>10}{:>10}{:>9}{:>9}".format(
    "runs", "seconds", "runs/s", "p50 ms", "p99 ms"
)
CPU_KEYS = ("bench", "api", "worker1", "postgres", "redis", "other", "machine")


def busy_elsewhere(cpu: Mapping[str, float], seconds: float) -> bool:
    """Whether processes outside the benchmark used more than ``NOISE_SHARE`` of the machine meanwhile."""
    return cpu.get("other", 0.0) > NOISE_SHARE * seconds * (os.cpu_count() or 1)


def print_row(row: Row) -> None:
    """One table line; ``(time cap)`` marks a level stopped by ``--max-seconds`` before all runs were done,
    ``(machine busy)`` one during which other processes used more than 10 % of the CPUs."""
    mark = "  (time cap)" if row.capped else ""
    if busy_elsewhere(row.cpu, row.seconds):
        mark += f"  (machine busy: {row.cpu['other']:.1f} CPU-s elsewhere)"
    lead = LEAD.format(row.variant, row.round, row.concurrency)
    print(
        f"{lead}{row.runs:>7}{row.seconds:>10.2f}{row.throughput:>10.1f}{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}{mark}",
        flush=True,
    )


def print_cpu(rows: Sequence[Row]) -> None:
    """CPU seconds each process used per level, beside the wall time x CPUs available."""
    print("\nCPU seconds used during each level (wall x CPUs is what the machine had):")
    columns = "".join(f"{k:>10}" for k in CPU_KEYS)
    print(LEAD.format("variant", "round", "conc") + columns + f"{'wall x cpus':>13}")
    for r in rows:
        cells = "".join(f"{r.cpu[k]:>10.2f}" if k in r.cpu else f"{'-':>10}" for k in CPU_KEYS)
        lead = LEAD.format(r.variant, r.round, r.concurrency)
        print(f"{lead}{cells}{r.seconds * (os.cpu_count() or 1):>13.2f}")


def print_background(b: Background) -> None:
    """Part 2's figures."""

    def line(label: str, *values: float) -> None:
        print(f"  {label:<47}" + "".join(f"{v:>10.1f}" for v in values))

    print(f"\npart 2: {b.runs} background runs (runs.create, a new thread each), {b.workers} workers")
    line(f"creates sent (client, {b.create_concurrency} in flight), s", b.create_seconds)
    line("first run created -> last run finished, s", b.window_seconds)
    line("runs/s", b.throughput)
    print(f"  {'':<47}{'p50':>10}{'p99':>10}")
    line("queue wait (created -> input checkpoint), ms", b.queue_wait_p50_ms, b.queue_wait_p99_ms)
    line("execution (input checkpoint -> finished), ms", b.execution_p50_ms, b.execution_p99_ms)
    line("end to end (created -> finished), ms", b.end_to_end_p50_ms, b.end_to_end_p99_ms)
    line("queue wait max, ms", b.queue_wait_max_ms)
    print(
        f"  runs attempted more than once: {b.retried_runs}; executed from the start more than once: "
        f"{b.restarted_runs}"
    )
    if busy_elsewhere(b.cpu, b.window_seconds):
        print(f"  (machine busy: {b.cpu['other']:.1f} CPU-s used elsewhere during the window)")
    print("  CPU s during the window: " + ", ".join(f"{k} {v:.1f}" for k, v in b.cpu.items()), flush=True)


def print_server_output(output: Mapping[str, Sequence[str]]) -> None:
    """What the graphrun processes logged (level WARNING and above): a count each, then the lines."""
    print(
        "graphrun output lines (log level WARNING): " + ", ".join(f"{k} {len(v)}" for k, v in output.items())
    )
    for name, lines in output.items():
        for line in lines[:SHOWN_OUTPUT_LINES]:
            print(f"  {name}: {line[:400]}")


def verdict(rows: Sequence[Row]) -> dict[str, Any]:
    """graphrun/raw throughput at every level (headline: raw with LangGraph's default durability) and
    whether every headline ratio meets the target."""
    headline = ratios(rows, RAW)
    return {
        "ratios": {str(k): v for k, v in headline.items()},
        "round_ratios": {str(k): v for k, v in round_ratios(rows, RAW).items()},
        "ratios_vs_raw_sync": {str(k): v for k, v in ratios(rows, RAW_SYNC).items()},
        "target_ratio": TARGET_RATIO,
        "target_met": (min(headline.values()) >= TARGET_RATIO) if headline else None,
    }


def print_verdict(summary: dict[str, Any]) -> None:
    print()
    for level, ratio in summary["ratios"].items():
        each = ", ".join(f"{r:.2f}" for r in summary["round_ratios"][level])
        print(f"ratio graphrun/raw throughput at concurrency {level}: {ratio:.2f} (median of rounds: {each})")
    for level, ratio in summary["ratios_vs_raw_sync"].items():
        print(f"ratio graphrun/raw(durability=sync) at concurrency {level}: {ratio:.2f} (information)")
    met = summary["target_met"]
    state = "UNKNOWN" if met is None else ("MET" if met else "NOT MET")
    print(f"target (graphrun / raw >= {TARGET_RATIO} at every level): {state}")


def write_json(
    path: Path,
    env: dict[str, Any],
    args: argparse.Namespace,
    rows: Sequence[Row],
    background: Background | None,
    extra: dict[str, Any],
) -> None:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    report = {
        "settings": settings,
        "environment": env,
        "rows": [asdict(r) for r in rows],
        "background": asdict(background) if background else None,
        **extra,
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


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
