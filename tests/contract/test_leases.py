"""The worker's side: claiming, leases and their fencing token, finishing, releasing and reaping."""

from __future__ import annotations

import asyncio

import pytest

from graphrun import errors
from graphrun.models import Run, new_id
from graphrun.stores.base import ControlStore
from graphrun.types import Json, RunStatus, ThreadStatus

from ._support import (
    EXPIRED_LEASE_S,
    LEASE_S,
    WORKER,
    add_run,
    claim_one,
    outcome,
    running_run,
)

INTERRUPTS: dict[str, list[Json]] = {"task-1": [{"value": "approve?", "id": "i-1"}]}


async def _stale_and_current(store: ControlStore) -> tuple[Run, Run]:
    """One run claimed twice: the first attempt's lease expired and was reaped, the second holds it now."""
    stale = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)
    assert [r.run_id for r in await store.reap_expired(max_attempts=5)] == [stale.run_id]
    current = await claim_one(store)
    assert (current.run_id, stale.attempt, current.attempt) == (stale.run_id, 1, 2)
    return stale, current


async def test_claim_marks_the_run_running_and_counts_the_attempt(store: ControlStore) -> None:
    run = await add_run(store, new_id())

    claimed = await claim_one(store)

    assert claimed.run_id == run.run_id
    assert claimed.status == "running"
    assert claimed.attempt == 1
    assert claimed.request == run.request
    stored = await store.find_run(run.run_id)
    assert (stored.status, stored.attempt) == ("running", 1)


async def test_claim_takes_one_run_per_thread_oldest_first(store: ControlStore) -> None:
    thread_id = new_id()
    first = await add_run(store, thread_id)
    second = await add_run(store, thread_id)

    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [first.run_id]
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []  # the thread is running one already
    assert (await store.find_run(second.run_id)).status == "pending"

    await store.finish_run(await store.find_run(first.run_id), outcome())

    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [second.run_id]


async def test_claim_respects_the_limit_oldest_first(store: ControlStore) -> None:
    runs = [await add_run(store, new_id()) for _ in range(3)]

    first = await store.claim_runs(WORKER, 2, LEASE_S)
    rest = await store.claim_runs(WORKER, 2, LEASE_S)

    assert sorted(r.run_id for r in first) == sorted(r.run_id for r in runs[:2])
    assert [r.run_id for r in rest] == [runs[2].run_id]
    assert await store.claim_runs(WORKER, 2, LEASE_S) == []


async def test_claim_skips_runs_not_yet_available(store: ControlStore) -> None:
    later = await add_run(store, new_id(), delay_s=3600)
    now = await add_run(store, new_id())

    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [now.run_id]
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []
    assert (await store.find_run(later.run_id)).status == "pending"


async def test_concurrent_claims_never_share_a_run(store: ControlStore) -> None:
    created = {(await add_run(store, new_id())).run_id for _ in range(6)}

    batches = await asyncio.gather(*(store.claim_runs(f"worker-{i}", 3, LEASE_S) for i in range(4)))
    claimed = [r.run_id for batch in batches for r in batch]
    claimed += [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)]

    assert len(claimed) == len(set(claimed)), claimed
    assert set(claimed) == created
    assert all(r.attempt == 1 for batch in batches for r in batch)


@pytest.mark.parametrize(
    ("status", "thread_status", "interrupts", "error"),
    [
        pytest.param("success", "idle", {}, None, id="success"),
        pytest.param("success", "interrupted", INTERRUPTS, None, id="interrupted"),
        pytest.param("error", "error", {}, {"error": "ValueError", "message": "boom"}, id="error"),
        pytest.param("timeout", "error", {}, {"error": "TimeoutError", "message": "late"}, id="timeout"),
    ],
)
async def test_finish_run_records_the_outcome_on_run_and_thread(
    store: ControlStore,
    status: RunStatus,
    thread_status: ThreadStatus,
    interrupts: dict[str, list[Json]],
    error: Json | None,
) -> None:
    run = await running_run(store, new_id())
    values = {"messages": ["hi", "hello"]}

    result = outcome(status, values=values, thread_status=thread_status, interrupts=interrupts, error=error)
    await store.finish_run(run, result)

    stored = await store.find_run(run.run_id)
    assert (stored.status, stored.output, stored.error) == (status, values, error)
    thread = await store.get_thread(run.thread_id)
    assert (thread.status, thread.values, thread.interrupts) == (thread_status, values, interrupts)


async def test_finish_run_keeps_the_thread_busy_while_another_run_waits(store: ControlStore) -> None:
    run = await running_run(store, new_id())
    await add_run(store, run.thread_id)

    await store.finish_run(run, outcome(values={"n": 1}))

    thread = await store.get_thread(run.thread_id)
    assert thread.status == "busy"
    assert thread.values == {"n": 1}


async def test_a_finished_run_cannot_be_finished_renewed_or_released_again(store: ControlStore) -> None:
    run = await running_run(store, new_id())
    await store.finish_run(run, outcome(values={"n": 1}))

    with pytest.raises(errors.LeaseLost):
        await store.finish_run(run, outcome("error", thread_status="error"))
    with pytest.raises(errors.LeaseLost):
        await store.renew_lease(run, WORKER, LEASE_S)
    with pytest.raises(errors.LeaseLost):
        await store.release_run(run)
    stored = await store.find_run(run.run_id)
    assert (stored.status, stored.output) == ("success", {"n": 1})
    assert (await store.get_thread(run.thread_id)).status == "idle"


async def test_finish_with_a_stale_attempt_is_lease_lost_and_changes_nothing(store: ControlStore) -> None:
    stale, current = await _stale_and_current(store)

    with pytest.raises(errors.LeaseLost):
        await store.finish_run(stale, outcome("error", values={"stale": True}, thread_status="error"))

    stored = await store.find_run(stale.run_id)
    assert (stored.status, stored.attempt, stored.output, stored.error) == ("running", 2, None, None)
    thread = await store.get_thread(stale.thread_id)
    assert (thread.status, thread.values) == ("busy", None)
    # The current holder still can.
    await store.finish_run(current, outcome(values={"n": 2}))
    assert (await store.find_run(current.run_id)).status == "success"


async def test_release_with_a_stale_attempt_is_lease_lost_and_changes_nothing(store: ControlStore) -> None:
    stale, current = await _stale_and_current(store)

    with pytest.raises(errors.LeaseLost):
        await store.release_run(stale)

    stored = await store.find_run(stale.run_id)
    assert (stored.status, stored.attempt) == ("running", 2)
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []
    assert await store.renew_lease(current, WORKER, LEASE_S) is None


async def test_renew_with_a_stale_attempt_is_lease_lost(store: ControlStore) -> None:
    stale, current = await _stale_and_current(store)

    with pytest.raises(errors.LeaseLost):
        await store.renew_lease(stale, WORKER, LEASE_S)
    assert await store.renew_lease(current, WORKER, LEASE_S) is None


async def test_renew_by_another_worker_is_lease_lost(store: ControlStore) -> None:
    run = await running_run(store, new_id())

    with pytest.raises(errors.LeaseLost):
        await store.renew_lease(run, "someone-else", LEASE_S)
    assert await store.renew_lease(run, WORKER, LEASE_S) is None


async def test_renewing_keeps_the_reaper_away(store: ControlStore) -> None:
    run = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)

    await store.renew_lease(run, WORKER, LEASE_S)

    assert await store.reap_expired(max_attempts=5) == []
    assert (await store.find_run(run.run_id)).status == "running"


async def test_release_returns_the_run_for_another_attempt(store: ControlStore) -> None:
    run = await running_run(store, new_id())

    await store.release_run(run)

    assert (await store.find_run(run.run_id)).status == "pending"
    assert (await store.get_thread(run.thread_id)).status == "busy"
    again = await claim_one(store, worker_id="worker-2")
    assert (again.run_id, again.attempt) == (run.run_id, 2)


async def test_reap_returns_expired_runs_to_pending(store: ControlStore) -> None:
    expired = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)
    live = await running_run(store, new_id(), lease_s=LEASE_S)

    reaped = await store.reap_expired(max_attempts=3)

    assert [r.run_id for r in reaped] == [expired.run_id]
    stored = await store.find_run(expired.run_id)
    assert (stored.status, stored.attempt) == ("pending", 1)
    assert (await store.get_thread(expired.thread_id)).status == "busy"
    assert (await store.find_run(live.run_id)).status == "running"
    assert (await claim_one(store)).run_id == expired.run_id


async def test_reap_after_a_short_real_lease(store: ControlStore) -> None:
    run = await running_run(store, new_id(), lease_s=0.01)

    await asyncio.sleep(0.05)

    assert [r.run_id for r in await store.reap_expired(max_attempts=3)] == [run.run_id]
    assert (await store.find_run(run.run_id)).status == "pending"


async def test_reap_ends_a_run_in_error_after_max_attempts(store: ControlStore) -> None:
    max_attempts = 2
    run = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)
    await store.reap_expired(max_attempts)
    assert (await store.find_run(run.run_id)).status == "pending"
    again = await claim_one(store, lease_s=EXPIRED_LEASE_S)
    assert again.attempt == max_attempts

    reaped = await store.reap_expired(max_attempts)

    assert [r.run_id for r in reaped] == [run.run_id]
    stored = await store.find_run(run.run_id)
    assert stored.status == "error"
    assert stored.error is not None
    message = str(stored.error.get("message", ""))
    assert "attempt" in message.lower()
    assert str(max_attempts) in message
    thread = await store.get_thread(run.thread_id)
    assert thread.status == "error"
    assert await store.claim_runs(WORKER, 10, LEASE_S) == []


async def test_reap_all_running_takes_back_every_running_run(store: ControlStore) -> None:
    runs = [await running_run(store, new_id(), lease_s=3600) for _ in range(2)]
    pending = await add_run(store, new_id(), delay_s=3600)

    assert await store.reap_expired(max_attempts=3) == []
    reaped = await store.reap_expired(max_attempts=3, all_running=True)

    assert sorted(r.run_id for r in reaped) == sorted(r.run_id for r in runs)
    for run in runs:
        assert (await store.find_run(run.run_id)).status == "pending"
    assert (await store.find_run(pending.run_id)).status == "pending"


async def test_a_delayed_run_is_not_overtaken_on_its_thread(store: ControlStore) -> None:
    """`after_seconds` delays a run; a later run on the same thread queues behind it (enqueue order)."""
    thread_id = new_id()
    await add_run(store, thread_id, delay_s=3600)
    await add_run(store, thread_id)
    other = await add_run(store, new_id())

    assert [r.run_id for r in await store.claim_runs(WORKER, 10, LEASE_S)] == [other.run_id]


async def test_reap_ends_a_run_cancelled_with_interrupt_whose_worker_died(store: ControlStore) -> None:
    run = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)
    await store.cancel_run(run.thread_id, run.run_id, "interrupt")

    await store.reap_expired(max_attempts=5)

    assert (await store.find_run(run.run_id)).status == "interrupted"
    assert (await store.get_thread(run.thread_id)).status == "idle"


async def test_reap_hands_an_unfinished_rollback_to_the_next_worker(store: ControlStore) -> None:
    """Undoing a run needs its checkpoints deleted, which only a worker can do: the run goes back to
    pending, still flagged, and the worker that claims it undoes it instead of executing it."""
    run = await running_run(store, new_id(), lease_s=EXPIRED_LEASE_S)
    await store.cancel_run(run.thread_id, run.run_id, "rollback")

    await store.reap_expired(max_attempts=1)  # even with no attempts left

    claimed = await claim_one(store)
    assert (claimed.run_id, claimed.cancel_action, claimed.attempt) == (run.run_id, "rollback", 2)
