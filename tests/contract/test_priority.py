"""Run priority in the control store: a thread keeps the settings its first run assigns, and a claim
takes the lowest priority number first (-5 before 0 before 5), each thread still one run at a time and
FIFO."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from langgraph_sdk import Priority, PriorityContext, PrioritySettings

from graphrun import crons
from graphrun.models import Cron, new_id, utcnow
from graphrun.stores.base import ControlStore, NewRun

from ._support import ASSISTANT_ID, GRAPH_ID, LEASE_S, WORKER, new_run, outcome


async def _claim_next(store: ControlStore) -> str:
    """The id of the one run a claim of at most one takes."""
    [run] = await store.claim_runs(WORKER, 1, LEASE_S)
    return run.run_id


def _with(new: NewRun, priority: int | None, group: str | None = None) -> NewRun:
    return dataclasses.replace(new, priority=priority, fairness_group=group)


async def test_claims_take_the_lowest_priority_number_first(store: ControlStore) -> None:
    # Created in the order FIFO would claim them: 5, then the default, then -5.
    last = (await store.create_run(_with(new_run(new_id()), 5))).run
    middle = (await store.create_run(new_run(new_id()))).run
    first = (await store.create_run(_with(new_run(new_id()), -5))).run

    claimed = [await _claim_next(store) for _ in range(3)]

    assert claimed == [first.run_id, middle.run_id, last.run_id]


async def test_a_claim_of_several_takes_the_most_urgent(store: ControlStore) -> None:
    low = (await store.create_run(_with(new_run(new_id()), 3))).run
    high = (await store.create_run(_with(new_run(new_id()), -2))).run
    default = (await store.create_run(new_run(new_id()))).run

    claimed = await store.claim_runs(WORKER, 2, LEASE_S)

    assert {r.run_id for r in claimed} == {high.run_id, default.run_id}
    assert (await store.find_run(low.run_id)).status == "pending"


async def test_a_thread_keeps_the_settings_of_its_first_run(store: ControlStore) -> None:
    thread_id = new_id()
    await store.create_thread(thread_id, {}, "raise")
    assert (await store.get_thread(thread_id)).priority is None  # not assigned until a run

    first = (await store.create_run(_with(new_run(thread_id), -5, "org-a"))).run
    second = (await store.create_run(_with(new_run(thread_id), 5, "org-b"))).run  # says otherwise
    thread = await store.get_thread(thread_id)
    assert (thread.priority, thread.fairness_group) == (-5, "org-a")

    # The thread's second run is claimed at the thread's priority, ahead of an older default run, and
    # only once its first run is done (one at a time, FIFO).
    other = (await store.create_run(new_run(new_id()))).run
    assert await _claim_next(store) == first.run_id
    assert await _claim_next(store) == other.run_id
    await store.finish_run(await store.find_run(first.run_id), outcome())
    assert await _claim_next(store) == second.run_id


async def test_a_run_that_assigns_nothing_leaves_the_thread_unassigned(store: ControlStore) -> None:
    thread_id = new_id()
    await store.create_run(new_run(thread_id))
    await store.create_run(new_run(thread_id))

    thread = await store.get_thread(thread_id)

    assert (thread.priority, thread.fairness_group) == (None, None)


@pytest.mark.filterwarnings("ignore::langgraph_sdk.encryption.LangGraphBetaWarning")
async def test_a_cron_run_asks_with_its_cron_id_and_keeps_what_it_got(store: ControlStore) -> None:
    seen: list[PriorityContext] = []
    hook = Priority()

    @hook.assign
    async def assign(ctx: PriorityContext) -> PrioritySettings | None:
        seen.append(ctx)
        return {"priority": 4, "fairness_group": "crons"}

    await store.ensure_system_assistant(ASSISTANT_ID, GRAPH_ID, None)
    thread_id = new_id()
    await store.create_thread(thread_id, {"team": "a"}, "raise")
    now = utcnow()
    cron = await store.create_cron(
        Cron(
            cron_id=new_id(),
            assistant_id=ASSISTANT_ID,
            thread_id=thread_id,
            user_id="ops",
            schedule="* * * * *",
            timezone=None,
            end_time=None,
            enabled=True,
            on_run_completed=None,
            next_run_date=now - timedelta(seconds=1),
            payload={"assistant_id": GRAPH_ID, "schedule": "* * * * *"},
            metadata={},
            template={
                "graph_id": GRAPH_ID,
                "metadata": {"k": 1},
                "multitask_strategy": "enqueue",
                "request": {},
            },
            created_at=now,
            updated_at=now,
        )
    )

    [fired] = await crons.fire_due(store, now, 10, hook)

    assert fired.run is not None
    [ctx] = seen
    assert (ctx.cron_id, ctx.thread_id, ctx.user.identity) == (cron.cron_id, thread_id, "ops")
    assert (ctx.thread_metadata["team"], ctx.run_metadata, ctx.graph_id) == ("a", {"k": 1}, GRAPH_ID)
    thread = await store.get_thread(thread_id)
    assert (thread.priority, thread.fairness_group) == (4, "crons")
