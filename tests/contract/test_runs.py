"""Runs as the API sees them: creating (thread checks, multitask strategies), reading, deleting, cancels."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from graphrun import errors
from graphrun.models import RunRequest, new_id
from graphrun.stores.base import ControlStore, Page
from graphrun.types import CancelAction, RunStatus

from ._support import (
    ASSISTANT_ID,
    EXPIRED_LEASE_S,
    GRAPH_ID,
    LEASE_S,
    WORKER,
    add_run,
    claim_one,
    finished_run,
    new_run,
    outcome,
    running_run,
)


async def _inflight(store: ControlStore, status: RunStatus, thread_id: str) -> str:
    """A run on ``thread_id`` in ``status`` (``pending`` or ``running``); return its id."""
    if status == "running":
        return (await running_run(store, thread_id)).run_id
    return (await add_run(store, thread_id)).run_id


async def test_create_run_stores_the_request(store: ControlStore) -> None:
    request = RunRequest(input={"messages": ["hi"]}, stream_mode=["values", "updates"], durability="sync")
    new = new_run(new_id(), metadata={"source": "test"}, request=request)

    created = await store.create_run(new)

    for run in (
        created.run,
        await store.get_run(new.thread_id, new.run_id),
        await store.find_run(new.run_id),
    ):
        assert run.run_id == new.run_id
        assert run.thread_id == new.thread_id
        assert run.assistant_id == ASSISTANT_ID
        assert run.graph_id == GRAPH_ID
        assert run.status == "pending"
        assert run.attempt == 0
        assert run.metadata == {"source": "test"}
        assert run.multitask_strategy == "enqueue"
        assert run.request == request
    assert list(created.cancelled) == []


async def test_create_run_on_missing_thread_with_reject_writes_nothing(store: ControlStore) -> None:
    new = new_run(new_id(), if_not_exists="reject")

    with pytest.raises(errors.ThreadNotFound):
        await store.create_run(new)

    with pytest.raises(errors.ThreadNotFound):
        await store.get_thread(new.thread_id)
    with pytest.raises(errors.RunNotFound):
        await store.find_run(new.run_id)
    assert await store.count_threads({}, {}, None) == 0
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []


async def test_create_run_with_if_not_exists_create_makes_the_thread(store: ControlStore) -> None:
    new = new_run(new_id(), if_not_exists="create")

    await store.create_run(new)

    thread = await store.get_thread(new.thread_id)
    assert thread.status == "busy"
    assert thread.metadata == {"graph_id": GRAPH_ID, "assistant_id": ASSISTANT_ID}


async def test_a_thread_made_by_its_run_is_the_thread_made_first(store: ControlStore) -> None:
    """Postgres makes a run's new thread in one statement of its own: the thread must come out the same
    as one created, then given the run."""
    made_by_run = new_run(new_id(), if_not_exists="create")
    made_first = await store.create_thread(new_id(), {}, "raise")
    await store.create_run(made_by_run)
    await store.create_run(new_run(made_first.thread_id, if_not_exists="reject"))

    got, want = await store.get_thread(made_by_run.thread_id), await store.get_thread(made_first.thread_id)
    same = ("thread_id", "created_at", "updated_at", "state_updated_at")
    assert dataclasses.replace(got, **{k: getattr(want, k) for k in same}) == want
    assert got.created_at <= got.updated_at
    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] != []


async def test_create_run_stamps_the_thread_and_marks_it_busy(store: ControlStore) -> None:
    thread = await store.create_thread(new_id(), {"user": "u1"}, "raise")

    await store.create_run(new_run(thread.thread_id, if_not_exists="reject"))

    got = await store.get_thread(thread.thread_id)
    assert got.status == "busy"
    assert got.metadata == {"user": "u1", "graph_id": GRAPH_ID, "assistant_id": ASSISTANT_ID}


@pytest.mark.parametrize("current", ["pending", "running"])
async def test_reject_on_a_busy_thread_is_thread_busy_and_writes_nothing(
    store: ControlStore, current: RunStatus
) -> None:
    thread_id = new_id()
    first = await _inflight(store, current, thread_id)
    await store.update_thread(thread_id, {"graph_id": "before"})
    second = new_run(thread_id, strategy="reject")

    with pytest.raises(errors.ThreadBusy):
        await store.create_run(second)

    assert [r.run_id for r in await store.list_runs(thread_id, None, Page())] == [first]
    assert (await store.find_run(first)).status == current
    with pytest.raises(errors.RunNotFound):
        await store.find_run(second.run_id)
    assert (await store.get_thread(thread_id)).metadata["graph_id"] == "before"


async def test_reject_on_an_idle_thread_creates_the_run(store: ControlStore) -> None:
    thread_id = new_id()
    await finished_run(store, thread_id)

    created = await store.create_run(new_run(thread_id, strategy="reject"))

    assert created.run.status == "pending"
    assert len(await store.list_runs(thread_id, None, Page())) == 2


@pytest.mark.parametrize("current", ["pending", "running"])
async def test_enqueue_adds_a_pending_run_behind_the_current_one(
    store: ControlStore, current: RunStatus
) -> None:
    thread_id = new_id()
    first = await _inflight(store, current, thread_id)

    created = await store.create_run(new_run(thread_id, strategy="enqueue"))

    assert created.run.status == "pending"
    assert list(created.cancelled) == []
    assert (await store.find_run(first)).status == current
    assert (await store.find_run(first)).cancel_action is None
    assert [r.status for r in await store.list_runs(thread_id, None, Page())] == ["pending", current]


async def test_interrupt_strategy_ends_a_pending_run_at_once(store: ControlStore) -> None:
    thread_id = new_id()
    first = await add_run(store, thread_id)

    created = await store.create_run(new_run(thread_id, strategy="interrupt"))

    ended = await store.find_run(first.run_id)
    assert (ended.status, ended.cancel_reason) == ("interrupted", "superseded_by_interrupt")
    assert (created.run.status, created.run.cancel_reason) == ("pending", None)
    assert (await store.get_thread(thread_id)).status == "busy"
    # Only the new run is left to claim.
    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [created.run.run_id]


async def test_rollback_strategy_deletes_a_pending_run(store: ControlStore) -> None:
    """As on the official server: a run rolled back before it started leaves no trace."""
    thread_id = new_id()
    first = await add_run(store, thread_id)

    created = await store.create_run(new_run(thread_id, strategy="rollback"))

    with pytest.raises(errors.RunNotFound):
        await store.find_run(first.run_id)
    assert created.cancelled == []
    assert created.run.status == "pending"
    assert (await store.get_thread(thread_id)).status == "busy"
    # Only the new run is left to claim.
    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [created.run.run_id]


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_interrupting_strategy_flags_a_running_run_for_its_worker(
    store: ControlStore, strategy: CancelAction
) -> None:
    thread_id = new_id()
    first = await running_run(store, thread_id)

    created = await store.create_run(new_run(thread_id, strategy=strategy))

    assert [r.run_id for r in created.cancelled] == [first.run_id]
    stored = await store.find_run(first.run_id)
    assert stored.status == "running"  # its worker ends it
    assert stored.cancel_action == strategy
    assert await store.renew_lease(first, WORKER, LEASE_S) == strategy


async def test_get_run_on_another_thread_is_not_found(store: ControlStore) -> None:
    run = await add_run(store, new_id())
    other = await add_run(store, new_id())

    with pytest.raises(errors.RunNotFound):
        await store.get_run(other.thread_id, run.run_id)
    with pytest.raises(errors.RunNotFound):
        await store.get_run(run.thread_id, new_id())
    with pytest.raises(errors.RunNotFound):
        await store.find_run(new_id())


async def test_list_runs_newest_first_and_only_the_threads_own(store: ControlStore) -> None:
    thread_id = new_id()
    runs = [await add_run(store, thread_id) for _ in range(3)]
    await add_run(store, new_id())

    listed = await store.list_runs(thread_id, None, Page())

    assert [r.run_id for r in listed] == [r.run_id for r in reversed(runs)]


async def test_list_runs_filters_by_status(store: ControlStore) -> None:
    thread_id = new_id()
    done = await finished_run(store, thread_id)
    running = await running_run(store, thread_id)
    pending = await add_run(store, thread_id)

    async def listed(status: str | None) -> list[str]:
        return [r.run_id for r in await store.list_runs(thread_id, status, Page())]

    assert await listed("success") == [done.run_id]
    assert await listed("running") == [running.run_id]
    assert await listed("pending") == [pending.run_id]
    assert await listed("error") == []
    assert await listed(None) == [pending.run_id, running.run_id, done.run_id]


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        pytest.param(2, 0, [4, 3], id="first-page"),
        pytest.param(2, 2, [2, 1], id="second-page"),
        pytest.param(2, 4, [0], id="last-page"),
        pytest.param(2, 5, [], id="past-the-end"),
    ],
)
async def test_list_runs_limit_and_offset(
    store: ControlStore, limit: int, offset: int, expected: list[int]
) -> None:
    thread_id = new_id()
    runs = [await add_run(store, thread_id) for _ in range(5)]

    listed = await store.list_runs(thread_id, None, Page(limit=limit, offset=offset))

    assert [r.run_id for r in listed] == [runs[i].run_id for i in expected]


async def test_list_runs_of_a_missing_thread_is_thread_not_found(store: ControlStore) -> None:
    with pytest.raises(errors.ThreadNotFound):
        await store.list_runs(new_id(), None, Page())


async def test_delete_a_finished_run(store: ControlStore) -> None:
    thread_id = new_id()
    done = await finished_run(store, thread_id)
    kept = await finished_run(store, thread_id)

    await store.delete_run(thread_id, done.run_id)

    with pytest.raises(errors.RunNotFound):
        await store.get_run(thread_id, done.run_id)
    assert [r.run_id for r in await store.list_runs(thread_id, None, Page())] == [kept.run_id]


@pytest.mark.parametrize("current", ["pending", "running"])
async def test_delete_an_inflight_run_is_a_conflict(store: ControlStore, current: RunStatus) -> None:
    thread_id = new_id()
    run_id = await _inflight(store, current, thread_id)

    with pytest.raises(errors.Conflict):
        await store.delete_run(thread_id, run_id)

    assert (await store.get_run(thread_id, run_id)).status == current


async def test_delete_a_missing_run_is_not_found(store: ControlStore) -> None:
    run = await add_run(store, new_id())
    with pytest.raises(errors.RunNotFound):
        await store.delete_run(run.thread_id, new_id())
    with pytest.raises(errors.RunNotFound):
        await store.delete_run(new_id(), run.run_id)


async def test_cancel_a_pending_run_ends_it_and_frees_the_thread(store: ControlStore) -> None:
    run = await add_run(store, new_id())

    cancelled = await store.cancel_run(run.thread_id, run.run_id, "interrupt")

    assert (cancelled.status, cancelled.cancel_reason) == ("interrupted", "cancelled")
    assert (await store.find_run(run.run_id)).status == "interrupted"
    assert (await store.get_thread(run.thread_id)).status == "idle"
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []


async def test_cancel_a_pending_run_keeps_the_thread_busy_with_another(store: ControlStore) -> None:
    thread_id = new_id()
    first = await add_run(store, thread_id)
    second = await add_run(store, thread_id)

    await store.cancel_run(thread_id, first.run_id, "interrupt")

    assert (await store.get_thread(thread_id)).status == "busy"
    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [second.run_id]


async def test_cancel_a_running_run_flags_it_for_its_worker(store: ControlStore) -> None:
    run = await running_run(store, new_id())

    flagged = await store.cancel_run(run.thread_id, run.run_id, "interrupt", "client_disconnect")
    await store.cancel_run(run.thread_id, run.run_id, "interrupt")  # the first reason stays

    assert flagged.status == "running"
    assert (flagged.cancel_action, flagged.cancel_reason) == ("interrupt", "client_disconnect")
    assert (await store.find_run(run.run_id)).cancel_reason == "client_disconnect"
    assert (await store.get_thread(run.thread_id)).status == "busy"
    assert await store.renew_lease(run, WORKER, LEASE_S) == "interrupt"


async def test_cancel_a_missing_run_is_not_found(store: ControlStore) -> None:
    run = await add_run(store, new_id())
    with pytest.raises(errors.RunNotFound):
        await store.cancel_run(run.thread_id, new_id(), "interrupt")


async def test_cancel_a_pending_run_with_rollback_deletes_it(store: ControlStore) -> None:
    run = await add_run(store, new_id())

    cancelled = await store.cancel_run(run.thread_id, run.run_id, "rollback")

    assert cancelled.status == "pending"  # as it was: the row is gone
    with pytest.raises(errors.RunNotFound):
        await store.find_run(run.run_id)
    assert (await store.get_thread(run.thread_id)).status == "idle"
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []


async def test_rollback_run_deletes_the_run_and_resets_the_thread(store: ControlStore) -> None:
    thread_id = new_id()
    await finished_run(store, thread_id, values={"count": 1})
    run = await running_run(store, thread_id)

    await store.rollback_run(run, outcome("interrupted", thread_status="idle", values={"count": 1}))

    with pytest.raises(errors.RunNotFound):
        await store.find_run(run.run_id)
    thread = await store.get_thread(thread_id)
    assert thread.status == "idle"
    assert thread.values == {"count": 1}


async def test_rollback_of_a_first_run_leaves_the_thread_without_values(store: ControlStore) -> None:
    run = await running_run(store, new_id())
    await store.finish_run(run, outcome("success", thread_status="idle", values={"count": 5}))
    second = await running_run(store, run.thread_id)

    await store.rollback_run(second, outcome("interrupted", thread_status="idle", values=None))

    assert (await store.get_thread(run.thread_id)).values is None


async def test_rollback_keeps_the_thread_busy_with_the_next_run(store: ControlStore) -> None:
    thread_id = new_id()
    run = await running_run(store, thread_id)
    await add_run(store, thread_id)

    await store.rollback_run(run, outcome("interrupted", thread_status="idle", values=None))

    assert (await store.get_thread(thread_id)).status == "busy"


async def test_a_stale_attempt_cannot_roll_back(store: ControlStore) -> None:
    run = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)
    await store.reap_expired(max_attempts=5)
    await claim_one(store)  # attempt 2 now holds the run

    with pytest.raises(errors.LeaseLost):
        await store.rollback_run(run, outcome("interrupted", thread_status="idle", values=None))
    assert (await store.find_run(run.run_id)).status == "running"


async def test_inflight_runs_across_threads_by_status_and_assistant(store: ControlStore) -> None:
    running = await running_run(store, new_id())
    await finished_run(store, new_id())
    pending = await add_run(store, new_id())  # last: the helpers above claim what is pending

    everything = await store.inflight_runs(None, None, 100)
    only_pending = await store.inflight_runs("pending", None, 100)
    of_assistant = await store.inflight_runs(None, ASSISTANT_ID, 100)
    of_nobody = await store.inflight_runs(None, new_id(), 100)

    assert [r.run_id for r in everything] == [running.run_id, pending.run_id]
    assert [r.run_id for r in only_pending] == [pending.run_id]
    assert [r.run_id for r in of_assistant] == [running.run_id, pending.run_id]
    assert of_nobody == []
    assert len(await store.inflight_runs(None, None, 1)) == 1


async def test_cancel_a_finished_run_is_not_found(store: ControlStore) -> None:
    """As on the official server: there is no cancellable run by that id."""
    run = await finished_run(store, new_id())

    with pytest.raises(errors.RunNotFound, match="already success"):
        await store.cancel_run(run.thread_id, run.run_id, "interrupt")
    assert (await store.find_run(run.run_id)).status == "success"


async def test_retention_deletes_only_runs_that_finished_long_enough_ago(store: ControlStore) -> None:
    thread_id = new_id()
    done = await finished_run(store, thread_id)
    pending = await add_run(store, new_id())
    assert await store.delete_old_runs(1.0, 100) == 0, "nothing finished a day ago"
    await asyncio.sleep(0.05)

    assert await store.delete_old_runs(1e-7, 100) == 1  # ~9 ms: the finished run, not the pending one

    with pytest.raises(errors.RunNotFound):
        await store.get_run(thread_id, done.run_id)
    assert (await store.get_run(pending.thread_id, pending.run_id)).status == "pending"
    await store.get_thread(thread_id)  # the thread stays


async def test_retention_deletes_at_most_its_limit_oldest_first(store: ControlStore) -> None:
    thread_id = new_id()
    first = await finished_run(store, thread_id)
    second = await finished_run(store, thread_id)
    await asyncio.sleep(0.05)

    assert await store.delete_old_runs(1e-7, 1) == 1

    assert [r.run_id for r in await store.list_runs(thread_id, None, Page())] == [second.run_id]
    assert first.run_id != second.run_id
