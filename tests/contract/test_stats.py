"""``ControlStore.run_stats``: the same figures from SQLite and PostgreSQL, for runs laid out at known times
(the store's clock is the one fake: ``stores/_sql/core.utcnow``)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from graphrun.models import RunStats, new_id, utcnow
from graphrun.stores._sql import core
from graphrun.stores.base import ControlStore
from graphrun.types import Json, RunStatus

from ._support import add_run, claim_one, new_run, outcome


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(utcnow() + timedelta(minutes=1))  # ahead of the real one: runs are due at once
    monkeypatch.setattr(core, "utcnow", fake)
    return fake


OPENAI = {"openai/gpt-4o": {"input": 10, "output": 5}}
ANTHROPIC = {"anthropic/claude": {"input": 7, "output": 3}}


async def _ran(
    store: ControlStore,
    clock: Clock,
    thread_id: str,
    seconds: float,
    status: RunStatus = "success",
    usage: Json | None = None,
    graph_id: str = "agent",
) -> None:
    """A run created now, claimed, and finished ``seconds`` later with ``status``."""
    started = clock.now
    new = dataclasses.replace(new_run(thread_id), graph_id=graph_id)
    await store.create_run(new)
    run = await claim_one(store)
    clock.now = started + timedelta(seconds=seconds)
    error = None if status == "success" else {"error": "X", "message": "y"}
    await store.finish_run(run, dataclasses.replace(outcome(status, error=error), usage=usage))
    clock.now += timedelta(seconds=1)


async def test_the_figures_of_a_window_are_the_same_on_every_store(store: ControlStore, clock: Clock) -> None:
    before = clock.now
    await _ran(store, clock, new_id(), 5.0)  # created before the window: not counted
    since = clock.now
    a, b, c = new_id(), new_id(), new_id()
    for seconds in (1.0, 2.0, 3.0):
        await _ran(store, clock, a, seconds, usage=OPENAI)
    await _ran(store, clock, b, 10.0, "error", ANTHROPIC)
    await _ran(store, clock, c, 20.0, "timeout")
    await _ran(store, clock, new_id(), 0.5, graph_id="other")
    await add_run(store, new_id())  # pending: a run and a thread, no latency
    until = clock.now + timedelta(seconds=1)
    assert before < since

    every = await store.run_stats(since, until, None)
    agent = await store.run_stats(since, until, "agent")

    assert every == RunStats(
        runs=7,
        threads=5,
        by_status={"error": 1, "pending": 1, "success": 4, "timeout": 1},
        turns_avg=1.4,
        turns_p95=3,
        latency_p50_s=2.0,  # of 0.5 1 2 3 10 20: nearest rank 3 of 6
        latency_p95_s=20.0,
        latency_p99_s=20.0,
        error_rate=round(1 / 6, 4),
        timeout_rate=round(1 / 6, 4),
        tokens={"anthropic/claude": {"input": 7, "output": 3}, "openai/gpt-4o": {"input": 30, "output": 15}},
    )
    assert agent.runs == 6
    assert agent.threads == 4
    assert agent.latency_p50_s == 3.0  # of 1 2 3 10 20
    assert agent.error_rate == agent.timeout_rate == 0.2
    assert agent.tokens == every.tokens


async def test_an_empty_window_has_no_rates_nor_percentiles(store: ControlStore, clock: Clock) -> None:
    await _ran(store, clock, new_id(), 1.0)
    later = clock.now + timedelta(hours=1)

    empty = await store.run_stats(later, later + timedelta(hours=1), None)

    assert empty == RunStats(0, 0, {}, None, None, None, None, None, None, None, {})
    assert empty.json()["turns_per_thread"] == {"avg": None, "p95": None}
