"""What ``bench/production.py`` runs on: URIs and times parsed, the CPU each process and the machine
used, fresh PostgreSQL databases and a flushed Redis database, and graphrun's processes (their
environment, migrations, readiness, a guard that fails when one dies)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from psycopg import sql
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench._common import (
    TRIVIAL,
    BenchError,
    Process,
    spawn,
    stop,
    wait_ok,
)

MIGRATE_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0  # above the worker's GRAPHRUN_SHUTDOWN_GRACE_S default (20 s)
REQUEST_TIMEOUT_S = 120.0
FIRST_RUN_TIMEOUT_S = 60.0  # the first run through a new worker (graph import, pools opening)
CLK_TCK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


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
