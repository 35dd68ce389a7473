"""Run priority (``priority.path``, a ``langgraph_sdk.Priority``) on a backlog, in both modes.

The backlog is written while nothing can claim it (production: before any worker starts; embedded: while
the one slot of ``GRAPHRUN_WORKER_CONCURRENCY=1`` holds a run that is cancelled once the backlog is
complete), in the order FIFO would get wrong: the ``batch`` threads (priority 5) first, then ``normal``
(0), then ``urgent`` (-5). Every urgent run must start before any batch run. Each run records when it
started and ended, so a thread's own runs are seen to run in order and never together, with two workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.cluster import Cluster, Procs, production_env
from tests.harness.embedded import Server, embedded

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(300)]

CONFIG = Path(__file__).resolve().parent / "priority" / "langgraph.json"
PER_TIER = 6
DELAY_S = 0.2
ONE_SLOT = {"GRAPHRUN_WORKER_CONCURRENCY": "1"}


async def _run(client: LangGraphClient, thread_id: str, tier: str | None, n: int = 0) -> dict[str, Any]:
    metadata = {"tier": tier} if tier else {}
    run: Any = await client.runs.create(
        thread_id,
        "clock",
        input={"delay_s": DELAY_S, "n": n},
        metadata=metadata,
        if_not_exists="create",
        multitask_strategy="enqueue",
    )
    return dict(run)


async def _backlog(client: LangGraphClient) -> dict[str, list[dict[str, Any]]]:
    """The runs by tier, plus ``fifo``: three runs on one thread whose first run makes it urgent (the
    later runs say ``batch``, which the thread's stored settings outrank), and ``broken``: a run whose
    assign function returns an out-of-range priority."""
    fifo = str(uuid.uuid4())
    runs: dict[str, list[dict[str, Any]]] = {"fifo": [await _run(client, fifo, "urgent", 0)]}
    for tier in ("batch", "normal", "urgent"):
        runs[tier] = [await _run(client, str(uuid.uuid4()), tier) for _ in range(PER_TIER)]
    runs["fifo"] += [await _run(client, fifo, "batch", n) for n in (1, 2)]
    runs["broken"] = [await _run(client, str(uuid.uuid4()), "broken")]
    return runs


async def _starts(client: LangGraphClient, runs: dict[str, list[dict[str, Any]]]) -> dict[str, list[float]]:
    """Wait for every run; the start times of each tier's runs."""
    for group in runs.values():
        for run in group:
            await client.runs.join(run["thread_id"], run["run_id"])
            done: Any = await client.runs.get(run["thread_id"], run["run_id"])
            assert done["status"] == "success", done
    starts: dict[str, list[float]] = {}
    for tier in ("batch", "normal", "urgent"):
        for run in runs[tier]:
            state: Any = await client.threads.get_state(run["thread_id"])
            [[_, started, _]] = state["values"]["spans"]
            starts.setdefault(tier, []).append(started)
    return starts


async def _check(client: LangGraphClient, runs: dict[str, list[dict[str, Any]]]) -> None:
    starts = await _starts(client, runs)
    # FIFO would start every batch run first; priority starts every urgent one before any of them.
    assert max(starts["urgent"]) < min(starts["batch"]), starts
    # One thread's runs: in the order they were created, one at a time.
    state: Any = await client.threads.get_state(runs["fifo"][0]["thread_id"])
    spans = state["values"]["spans"]
    assert [n for n, _, _ in spans] == [0, 1, 2], spans
    assert all(spans[i][2] <= spans[i + 1][1] for i in range(len(spans) - 1)), spans


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[Server]:
    with embedded(tmp_path, CONFIG, ONE_SLOT) as srv:
        yield srv


async def test_embedded_claims_the_backlog_by_priority(embedded_server: Server) -> None:
    async with embedded_server.client() as client:
        blocker = await client.runs.create(
            str(uuid.uuid4()), "clock", input={"delay_s": 600}, if_not_exists="create"
        )
        runs = await _backlog(client)
        await client.runs.cancel(blocker["thread_id"], blocker["run_id"])
        await _check(client, runs)
    written = "".join(p.read_text(encoding="utf-8") for p in embedded_server.log_dir.glob("server-*.log"))
    assert "priority_assign_failed" in written


async def test_two_workers_claim_the_backlog_by_priority(
    procs: Procs, database_uri: str, redis_uri: str
) -> None:
    cluster = Cluster(procs, production_env(database_uri, redis_uri, **ONE_SLOT), config=CONFIG)
    cluster.migrate()
    cluster.add_api()
    cluster.ensure_running()
    async with cluster.client() as client:
        runs = await _backlog(client)
        cluster.add_worker()
        cluster.add_worker()
        cluster.ensure_running()
        await _check(client, runs)
    assert "priority_assign_failed" in cluster.apis[0].output()
