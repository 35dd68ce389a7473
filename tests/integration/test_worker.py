"""The worker with a real SQLite control store and a real graph: leases, superseded attempts, cancels.

No HTTP here: these drive the worker through the store and the bus, as the API does, to reach situations
that are hard to time from outside (a lease taken over while the run still executes in this process).
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypedDict

import psycopg
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.store.memory import InMemoryStore

from graphrun import errors
from graphrun.config import GraphSpec
from graphrun.graphs import GraphRegistry, LoadedGraph
from graphrun.models import RunRequest, new_id, system_assistant_id, utcnow
from graphrun.runner import Runner
from graphrun.settings import Settings
from graphrun.stores.base import NewRun
from graphrun.stores.sqlite import SqliteStore
from graphrun.streams import LocalBus
from graphrun.types import Persistence
from graphrun.worker import Worker

pytestmark = pytest.mark.timeout(30)

STEP_S = 1.0


class State(TypedDict):
    log: Annotated[list[str], operator.add]


@dataclass
class Calls:
    starts: int = 0
    ends: int = 0
    outages: int = 0  # the first this many starts meet a database that does not answer


@dataclass
class Rig:
    store: SqliteStore
    bus: LocalBus
    calls: Calls

    async def submit(self) -> tuple[str, str]:
        thread_id, run_id = new_id(), new_id()
        await self.store.create_run(
            NewRun(
                run_id=run_id,
                thread_id=thread_id,
                assistant_id=system_assistant_id("g"),
                graph_id="g",
                metadata={},
                multitask_strategy="enqueue",
                request=RunRequest(input={"log": []}),
                available_at=utcnow() - timedelta(seconds=1),
                if_not_exists="create",
            )
        )
        self.bus.notify_new_run()
        return thread_id, run_id

    async def until(self, what: str, check: object) -> None:
        for _ in range(200):
            if callable(check) and check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    calls = Calls()

    async def slow_step(state: State) -> State:
        calls.starts += 1
        if calls.starts <= calls.outages:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        await asyncio.sleep(STEP_S)
        calls.ends += 1
        return {"log": ["step"]}

    graph = StateGraph(State).add_node("step", slow_step).add_edge(START, "step").compile()
    settings = Settings(data_dir=tmp_path, poll_interval_s=0.05, lease_s=30, heartbeat_interval_s=10)
    async with (
        AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver,
        SqliteStore(tmp_path / "control.sqlite") as store,
    ):
        persistence = Persistence(checkpointer=saver, store=InMemoryStore())
        registry = GraphRegistry(
            {"g": LoadedGraph(GraphSpec("g", None, "tests", "graph"), graph)}, persistence
        )
        await store.ensure_system_assistant(system_assistant_id("g"), "g", None)
        bus = LocalBus()
        async with Worker(settings, store, bus, Runner(settings, store, bus, registry)):
            yield Rig(store, bus, calls)


async def test_an_attempt_whose_lease_was_taken_over_stops_instead_of_running_twice(rig: Rig) -> None:
    thread_id, run_id = await rig.submit()
    await rig.until("the first attempt to start", lambda: rig.calls.starts == 1)

    # The lease is taken away while attempt 1 still executes here (as the reaper does when heartbeats
    # are late); the worker claims attempt 2 at once.
    await rig.store.reap_expired(max_attempts=3, all_running=True)
    rig.bus.notify_new_run()

    assert await rig.bus.wait_done(run_id, 10)
    run = await rig.store.get_run(thread_id, run_id)
    assert (run.status, run.attempt) == ("success", 2)
    assert rig.calls.starts == 2
    assert rig.calls.ends == 1, "the superseded attempt ran on beside the new one"


async def test_a_cancel_while_running_ends_the_run_interrupted(rig: Rig) -> None:
    thread_id, run_id = await rig.submit()
    await rig.until("the run to start", lambda: rig.calls.starts == 1)

    cancelled = await rig.store.cancel_run(thread_id, run_id, "interrupt")
    await rig.bus.cancel(run_id, "interrupt")

    assert cancelled.status == "running"  # a running run is flagged; its worker ends it
    assert await rig.bus.wait_done(run_id, 10)
    run = await rig.store.get_run(thread_id, run_id)
    assert (run.status, run.attempt) == ("interrupted", 1)
    assert rig.calls.ends == 0
    # cancelled mid-step: the step is still to run at the head, so the thread is interrupted (official rule)
    assert (await rig.store.get_thread(thread_id)).status == "interrupted"


async def test_a_rollback_its_worker_did_not_finish_is_done_by_the_next_attempt(rig: Rig) -> None:
    thread_id, run_id = await rig.submit()
    await rig.until("the run to start", lambda: rig.calls.starts == 1)

    # Flagged for rollback, but the signal never reaches the worker, whose lease is then taken away
    # (as if it died): attempt 2 must undo the run, not execute it.
    await rig.store.cancel_run(thread_id, run_id, "rollback")
    await rig.store.reap_expired(max_attempts=3, all_running=True)
    rig.bus.notify_new_run()

    assert await rig.bus.wait_done(run_id, 10)
    with pytest.raises(errors.RunNotFound):
        await rig.store.find_run(run_id)
    assert rig.calls.starts == 1, "the rolled-back run was executed again"
    assert (await rig.store.get_thread(thread_id)).status == "idle"


async def test_a_run_that_meets_an_unreachable_database_is_handed_back_not_failed(rig: Rig) -> None:
    """A database error is not the graph's fault: the run goes back to pending and succeeds later."""
    rig.calls.outages = 1
    thread_id, run_id = await rig.submit()

    assert await rig.bus.wait_done(run_id, 10)
    run = await rig.store.get_run(thread_id, run_id)
    assert (run.status, run.attempt) == ("success", 2)
    assert rig.calls.starts == 2
