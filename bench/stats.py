"""Benchmark: conversation analytics (``ControlStore.run_stats``, behind ``GET /stats`` and
``graphrun stats``) on a table of a million runs, on SQLite and on PostgreSQL.

It fills a fresh store of each kind (graphrun's own migrations, then one INSERT … SELECT generating the rows,
so that filling takes seconds): ``--runs`` runs on ``--runs``/10 threads, created over the last 30 days
evenly, 5 % ending error and 2 % timeout, every run with token usage of two models, half the runs of
graph ``agent`` and half of ``other``. Then it times ``run_stats`` for the last 24 hours (about 1/30 of the
runs), the last 24 hours of one graph, and all 30 days, ``--repeat`` times each, and prints the median.

    .venv/bin/python bench/stats.py                           # 1,000,000 runs; PostgreSQL at
                                                              # GRAPHRUN_TEST_DATABASE_URI or localhost
    .venv/bin/python bench/stats.py --runs 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphrun.models import utcnow  # noqa: E402
from graphrun.stores._rows import ts  # noqa: E402
from graphrun.stores.postgres import PostgresStore  # noqa: E402
from graphrun.stores.sqlite import SqliteStore  # noqa: E402

DAY_S = 86_400
USAGE = '{"openai/gpt-4o": {"input": 120, "output": 40}, "anthropic/claude": {"input": 30, "output": 9}}'

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :threads - 1)
INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at)
SELECT 'thread-' || i, :base, :base, :base FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :runs - 1),
timed AS (
    SELECT i, strftime('%Y-%m-%dT%H:%M:%S', :now, '-' || (i * :span / :runs) || ' seconds') AS at FROM n
)
INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, multitask_strategy, request, created_at,
                  updated_at, available_at, usage)
SELECT 'run-' || i, 'thread-' || (i % :threads), 'a', CASE WHEN i % 2 = 0 THEN 'agent' ELSE 'other' END,
       CASE WHEN i % 20 = 0 THEN 'error' WHEN i % 50 = 1 THEN 'timeout' ELSE 'success' END, 'enqueue', '{}',
       at || '.000000+00:00',
       strftime('%Y-%m-%dT%H:%M:%S', at, '+' || (i % 60) || ' seconds') || '.000000+00:00',
       at || '.000000+00:00', :usage
FROM timed;
"""

PG_FILL = """
INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at)
SELECT 'thread-' || i, %(now)s::timestamptz, %(now)s::timestamptz, %(now)s::timestamptz
FROM generate_series(0, %(threads)s - 1) AS i;
INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, multitask_strategy, request, created_at,
                  updated_at, available_at, usage)
SELECT 'run-' || i, 'thread-' || (i %% %(threads)s), 'a', CASE WHEN i %% 2 = 0 THEN 'agent' ELSE 'other' END,
       CASE WHEN i %% 20 = 0 THEN 'error' WHEN i %% 50 = 1 THEN 'timeout' ELSE 'success' END, 'enqueue', '{}',
       at, at + (i %% 60) * interval '1 second', at, %(usage)s::jsonb
FROM (SELECT i, date_trunc('second', %(now)s::timestamptz)
                 - (i::bigint * %(span)s / %(runs)s) * interval '1 second' AS at
      FROM generate_series(0, %(runs)s - 1) AS i) AS timed;
ANALYZE runs;
"""


async def median_s(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def measure(name: str, store: Any, repeat: int) -> None:
    now = utcnow()
    day = now - timedelta(days=1)
    month = now - timedelta(days=31)
    for label, since, graph in (
        ("24 h", day, None),
        ("24 h, one graph", day, "agent"),
        ("30 days", month, None),
    ):
        seconds, found = await median_s(functools.partial(store.run_stats, since, now, graph), repeat)
        print(
            f"{name:<10} {label:<16} {seconds * 1000:8.1f} ms   runs {found.runs:>8}  "
            f"threads {found.threads:>7}  p95 latency {found.latency_p95_s}s  turns avg {found.turns_avg}  "
            f"error {found.error_rate}"
        )


async def sqlite_bench(args: argparse.Namespace, work: Path) -> None:
    path = work / "control.sqlite3"
    async with SqliteStore(path):
        pass  # migrations
    started = time.perf_counter()
    import sqlite3

    conn = sqlite3.connect(path)
    params = {
        "threads": args.runs // 10,
        "runs": args.runs,
        "span": 30 * DAY_S,
        "now": ts(utcnow()).split(".")[0],
        "base": ts(utcnow()),
        "usage": USAGE,
    }
    for statement in filter(str.strip, SQLITE_FILL.split(";\n")):
        conn.execute(statement, {k: v for k, v in params.items() if f":{k}" in statement})
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    print(f"sqlite     filled {args.runs} runs in {time.perf_counter() - started:.1f}s")
    async with SqliteStore(path) as store:
        await measure("sqlite", store, args.repeat)


async def postgres_bench(args: argparse.Namespace) -> None:
    base = os.environ.get("GRAPHRUN_TEST_DATABASE_URI", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"graphrun_bench_stats_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    uri = psycopg.conninfo.make_conninfo(base, dbname=name)
    try:
        async with PostgresStore(uri, min_size=1, max_size=2):
            pass  # migrations
        started = time.perf_counter()
        params = {"threads": args.runs // 10, "runs": args.runs, "span": 30 * DAY_S, "now": ts(utcnow())}
        with psycopg.connect(uri, autocommit=True) as conn:
            for statement in filter(str.strip, PG_FILL.split(";\n")):
                conn.execute(statement, {**params, "usage": USAGE})
        print(f"postgres   filled {args.runs} runs in {time.perf_counter() - started:.1f}s")
        async with PostgresStore(uri, min_size=1, max_size=2) as store:
            await measure("postgres", store, args.repeat)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphrun-bench-stats-") as tmp:
        if args.only != "postgres":
            asyncio.run(sqlite_bench(args, Path(tmp)))
        if args.only != "sqlite":
            asyncio.run(postgres_bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
