"""Crons in the production topology: three ``graphrun worker`` processes polling one PostgreSQL every
50 ms fire a cron once per tick, not once per worker; after every worker was down, the missed ticks are
not replayed (the cron fires once on return and goes on from now), as the official server does."""

from __future__ import annotations

import asyncio
import itertools
import math
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cluster import Cluster, Procs, production_env
from tests.harness.waiting import PROCESSES, eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(300)]

CONFIG = Path(__file__).resolve().parents[1] / "acceptance" / "langgraph.json"
EVERY_SECOND = "* * * * * *"
WORKERS = 3


def _created(runs: list[Any]) -> list[float]:
    return sorted(datetime.fromisoformat(r["created_at"]).timestamp() for r in runs)


async def test_a_cron_fires_once_per_tick_across_workers(
    procs: Procs, database_uri: str, redis_uri: str
) -> None:
    cluster = Cluster(
        procs, production_env(database_uri, redis_uri, GRAPHRUN_CRON_INTERVAL_S="0.05"), config=CONFIG
    )
    cluster.migrate()
    cluster.add_api()
    for _ in range(WORKERS):
        cluster.add_worker()
    cluster.ensure_running()

    async with cluster.client() as client:
        thread_id = (await client.threads.create())["thread_id"]
        cron: Any = await client.crons.create_for_thread(
            thread_id, "counter", schedule=EVERY_SECOND, input={}
        )
        created = datetime.fromisoformat(cron["created_at"]).timestamp()
        await asyncio.sleep(6)
        await client.crons.update(cron["cron_id"], enabled=False)
        stopped = datetime.now().timestamp()
        await asyncio.sleep(1)
        runs = await client.runs.list(thread_id, limit=1000)

        # Every whole second between creation and disabling is one tick; one may land as it is disabled.
        ticks = math.floor(stopped) - math.floor(created)
        print(f"\ncron with {WORKERS} workers: {ticks} ticks, {len(runs)} runs")
        assert ticks - 2 <= len(runs) <= ticks + 1, (ticks, len(runs))
        times = _created(list(runs))
        # Ticks are a second apart; two runs of one tick would be written within a poll of each other.
        assert all(b - a > 0.25 for a, b in itertools.pairwise(times)), times

        # Every worker down for 3.5 s: three ticks and more pass with no one to fire them.
        for worker in cluster.workers:
            worker.signal(signal.SIGKILL)
        await client.crons.update(cron["cron_id"], enabled=True)
        await asyncio.sleep(3.5)
        before = len(await client.runs.list(thread_id, limit=1000))
        cluster.ensure_running()
        later = await eventually(
            lambda: client.runs.list(thread_id, limit=1000),
            lambda r: len(r) > before,
            what="a run after the return",
            **PROCESSES,
        )
        first = _created(list(later))[before]
        await asyncio.sleep(2.5)
        after_return = [
            t for t in _created(list(await client.runs.list(thread_id, limit=1000))) if t >= first
        ]
        # Replayed ticks would all be written at the first poll. What is seen: the one missed fire, and
        # perhaps the next tick if it falls within half a second of it; then one a second.
        assert len([t for t in after_return if t < first + 0.5]) <= 2, after_return
        await client.crons.delete(cron["cron_id"])
