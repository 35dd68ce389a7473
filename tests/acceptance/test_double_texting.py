"""Double-texting under real concurrency: several runs sent at once to one thread with each multitask
strategy, cancel with ``interrupt`` and ``rollback``, bulk cancel, ``if_not_exists`` races, delayed runs.

test_runs.py holds the single-request basics (a 409 on a busy thread, two enqueued runs, one interrupting
run); these send requests together with ``asyncio.gather`` and check the order and the final state exactly.
The ``slow`` graph appends one index per step to ``done``, so ``done`` tells how many steps ran in all, and
each checkpoint's metadata names the run that wrote it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Run, ThreadState

from tests.harness.sdk import as_dict, status_of
from tests.harness.waiting import eventually

from ._support import new_thread, slow_steps_done, until_running

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(90)]

BUSY = {"delay": 0.3, "steps": 100}  # a run that keeps its thread busy until it is cancelled


async def _status_becomes(client: LangGraphClient, thread_id: str, run_id: str, status: str) -> None:
    await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda run: run["status"] == status,
        what=f"run {run_id} to be {status}",
    )


async def _is_gone(client: LangGraphClient, thread_id: str, run_id: str) -> bool:
    """Whether GET on the run answers 404 (any other error is raised)."""
    try:
        await client.runs.get(thread_id, run_id)
    except httpx.HTTPStatusError as exc:
        if status_of(exc) == 404:
            return True
        raise
    return False


async def _history(client: LangGraphClient, thread_id: str) -> list[ThreadState]:
    """The thread's checkpoints, oldest first."""
    return list(reversed(await client.threads.get_history(thread_id, limit=1000)))


def _writers(history: list[ThreadState]) -> list[str]:
    """The run ids that wrote the checkpoints, oldest first, once per stretch of consecutive checkpoints."""
    order: list[str] = []
    for state in history:
        run_id = str(as_dict(state["metadata"])["run_id"])
        if not order or order[-1] != run_id:
            order.append(run_id)
    return order


def _checkpoint_ids(history: list[ThreadState]) -> list[str | None]:
    return [s["checkpoint"]["checkpoint_id"] for s in history]


def _at(timestamp: object) -> datetime:
    """A server timestamp (the SDK's types say datetime; the JSON holds an ISO 8601 string)."""
    if isinstance(timestamp, datetime):
        return timestamp
    assert isinstance(timestamp, str), timestamp
    return datetime.fromisoformat(timestamp)


def _by_creation(runs: list[Run]) -> list[Run]:
    """Runs in the order the server enqueued them (creation time, then id, as its queue orders them)."""
    return sorted(runs, key=lambda r: (_at(r["created_at"]), r["run_id"]))


async def _done(client: LangGraphClient, thread_id: str) -> list[int]:
    done: list[int] = as_dict((await client.threads.get_state(thread_id))["values"]).get("done", [])
    return done


async def _thread_with_one_step(client: LangGraphClient) -> tuple[str, str]:
    """A thread whose one finished run left ``done == [0]``; its id and that run's id."""
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "slow", input={"delay": 0.0, "steps": 1})
    (run,) = await client.runs.list(thread_id)
    return thread_id, run["run_id"]


# --- enqueue and reject -------------------------------------------------------------------------------------


async def test_runs_sent_at_once_execute_one_at_a_time_in_creation_order(
    client: LangGraphClient, tmp_path: Path
) -> None:
    thread_id = await new_thread(client)
    log = tmp_path / "steps.log"
    one_step: dict[str, Any] = {
        "delay": 0.1,
        "steps": 1,
        "log": str(log),
    }  # `done` is never empty after the first run

    created = await asyncio.gather(
        *(client.runs.create(thread_id, "slow", input=one_step, metadata={"n": n}) for n in range(6))
    )

    assert len({r["run_id"] for r in created}) == 6
    await asyncio.gather(*(client.runs.join(thread_id, r["run_id"]) for r in created))
    runs = await client.runs.list(thread_id, limit=100)
    assert sorted(r["status"] for r in runs) == ["success"] * 6
    order = [r["run_id"] for r in _by_creation(runs)]
    # Each run took one step, after the run created before it and never alongside another.
    assert await _done(client, thread_id) == [0, 1, 2, 3, 4, 5]
    assert log.read_text().splitlines() == [f"{event} {i}" for i in range(6) for event in ("start", "end")]
    assert _writers(await _history(client, thread_id)) == order
    assert [r["run_id"] for r in runs] == list(reversed(order))  # runs.list is newest first
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_rejecting_runs_sent_at_once_to_an_idle_thread_admit_exactly_one(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    results = await asyncio.gather(
        *(client.runs.create(thread_id, "slow", input=BUSY, multitask_strategy="reject") for _ in range(6)),
        return_exceptions=True,
    )

    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 1, results
    assert all(isinstance(e, httpx.HTTPStatusError) and status_of(e) == 409 for e in refused), refused
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [accepted[0]["run_id"]]
    await client.runs.cancel(thread_id, accepted[0]["run_id"], wait=True)


# --- interrupt ----------------------------------------------------------------------------------------------


async def test_interrupting_runs_sent_at_once_the_last_one_wins_and_progress_is_kept(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    first = await client.runs.create(thread_id, "slow", input=BUSY)
    await slow_steps_done(client, thread_id, at_least=2)

    pair = await asyncio.gather(
        *(
            client.runs.create(
                thread_id, "slow", input={"delay": 0.5, "steps": 1}, multitask_strategy="interrupt"
            )
            for _ in range(2)
        )
    )

    earlier, later = _by_creation(list(pair))
    await client.runs.join(thread_id, later["run_id"])
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(thread_id, earlier["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(thread_id, later["run_id"]))["status"] == "success"
    history = await _history(client, thread_id)
    # The interrupted run's checkpoints are kept and the winner continued from them.
    writers = _writers(history)
    assert writers[0] == first["run_id"]
    assert writers[-1] == later["run_id"]
    kept = [
        as_dict(s["values"]).get("done", [])
        for s in history
        if as_dict(s["metadata"])["run_id"] == first["run_id"]
    ]
    assert len(kept[-1]) >= 2
    done = await _done(client, thread_id)
    assert done == list(range(len(done)))
    assert done[: len(kept[-1])] == kept[-1]
    assert (await client.threads.get(thread_id))["status"] == "idle"


# --- rollback -----------------------------------------------------------------------------------------------


async def test_rollback_deletes_the_running_and_pending_runs_and_their_checkpoints(
    client: LangGraphClient,
) -> None:
    thread_id, kept_run = await _thread_with_one_step(client)
    history_before = _checkpoint_ids(await _history(client, thread_id))
    first = await client.runs.create(thread_id, "slow", input=BUSY)
    queued = await client.runs.create(thread_id, "slow", input={"delay": 0.0, "steps": 1})
    await slow_steps_done(client, thread_id, at_least=3)  # `first` has checkpointed two steps of its own

    new = await client.runs.create(
        thread_id, "slow", input={"delay": 0.0, "steps": 2}, multitask_strategy="rollback"
    )
    out = as_dict(await client.runs.join(thread_id, new["run_id"]))

    # The state is as if `first` and `queued` had never been: `new` took its steps from done == [0].
    assert out["done"] == [0, 1]
    assert await _is_gone(client, thread_id, first["run_id"])
    assert await _is_gone(client, thread_id, queued["run_id"])
    assert [(r["run_id"], r["status"]) for r in await client.runs.list(thread_id)] == [
        (new["run_id"], "success"),
        (kept_run, "success"),
    ]
    history = await _history(client, thread_id)
    assert _writers(history) == [kept_run, new["run_id"]]
    assert _checkpoint_ids(history)[: len(history_before)] == history_before
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_rollback_runs_sent_at_once_leave_only_the_last_one(client: LangGraphClient) -> None:
    thread_id, kept_run = await _thread_with_one_step(client)
    first = await client.runs.create(thread_id, "slow", input=BUSY)
    await slow_steps_done(client, thread_id, at_least=2)

    pair = await asyncio.gather(
        *(
            client.runs.create(
                thread_id, "slow", input={"delay": 0.5, "steps": 2}, multitask_strategy="rollback"
            )
            for _ in range(2)
        )
    )

    earlier, later = _by_creation(list(pair))
    out = as_dict(await client.runs.join(thread_id, later["run_id"]))
    assert out["done"] == [0, 1]
    assert await _is_gone(client, thread_id, first["run_id"])
    assert await _is_gone(client, thread_id, earlier["run_id"])
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [later["run_id"], kept_run]
    assert _writers(await _history(client, thread_id)) == [kept_run, later["run_id"]]


# --- cancel -------------------------------------------------------------------------------------------------


async def test_cancel_with_rollback_puts_the_thread_back_as_it_was(client: LangGraphClient) -> None:
    thread_id, kept_run = await _thread_with_one_step(client)
    state_before = await client.threads.get_state(thread_id)
    history_before = _checkpoint_ids(await _history(client, thread_id))
    thread_before = await client.threads.get(thread_id)
    run = await client.runs.create(thread_id, "slow", input=BUSY)
    await slow_steps_done(client, thread_id, at_least=3)

    await client.runs.cancel(thread_id, run["run_id"], wait=True, action="rollback")

    assert await _is_gone(client, thread_id, run["run_id"])
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [kept_run]
    assert _checkpoint_ids(await _history(client, thread_id)) == history_before
    state = await client.threads.get_state(thread_id)
    assert state["values"] == state_before["values"]
    assert state["checkpoint"] == state_before["checkpoint"]
    thread = await client.threads.get(thread_id)
    assert thread["status"] == thread_before["status"] == "idle"
    assert thread["values"] == thread_before["values"]
    # The thread goes on from where it was before the rolled-back run.
    out = as_dict(await client.runs.wait(thread_id, "slow", input={"delay": 0.0, "steps": 2}))
    assert out["done"] == [0, 1]


async def test_cancel_a_pending_run_with_rollback_deletes_it_and_spares_the_running_one(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    running = await client.runs.create(thread_id, "slow", input={"delay": 0.3, "steps": 4})
    await until_running(client, thread_id, running["run_id"])
    queued = await client.runs.create(thread_id, "slow", input={"delay": 0.0, "steps": 1})

    await client.runs.cancel(thread_id, queued["run_id"], wait=False, action="rollback")

    await eventually(
        lambda: _is_gone(client, thread_id, queued["run_id"]), bool, what="the pending run to be deleted"
    )
    out = as_dict(await client.runs.join(thread_id, running["run_id"]))
    assert out["done"] == [0, 1, 2, 3]
    assert (await client.runs.get(thread_id, running["run_id"]))["status"] == "success"
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [running["run_id"]]
    assert _writers(await _history(client, thread_id)) == [running["run_id"]]


async def test_cancel_with_interrupt_keeps_progress_and_the_queued_run_continues_from_it(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    first = await client.runs.create(thread_id, "slow", input=BUSY)
    await slow_steps_done(client, thread_id, at_least=2)
    queued = await client.runs.create(thread_id, "slow", input={"delay": 0.0, "steps": 1})

    await client.runs.cancel(thread_id, first["run_id"], wait=False, action="interrupt")

    await client.runs.join(thread_id, queued["run_id"])
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(thread_id, queued["run_id"]))["status"] == "success"
    history = await _history(client, thread_id)
    assert _writers(history) == [first["run_id"], queued["run_id"]]
    last_of_first = [
        as_dict(s["values"])["done"] for s in history if as_dict(s["metadata"])["run_id"] == first["run_id"]
    ]
    done = await _done(client, thread_id)
    assert done == last_of_first[-1] + [len(last_of_first[-1])]  # exactly one more step
    assert len(done) >= 3


async def test_bulk_cancel_by_status(client: LangGraphClient) -> None:
    busy_thread = await new_thread(client)
    running = await client.runs.create(busy_thread, "slow", input=BUSY)
    await until_running(client, busy_thread, running["run_id"])
    behind = await client.runs.create(busy_thread, "slow", input={"delay": 0.0, "steps": 1})
    delayed_thread = await new_thread(client)
    delayed = await client.runs.create(delayed_thread, "counter", input={"count": 0}, after_seconds=600)

    await client.runs.cancel_many(status="pending")

    await _status_becomes(client, busy_thread, behind["run_id"], "interrupted")
    await _status_becomes(client, delayed_thread, delayed["run_id"], "interrupted")
    assert (await client.runs.get(busy_thread, running["run_id"]))["status"] == "running"
    await eventually(
        lambda: client.threads.get(delayed_thread),
        lambda t: t["status"] == "idle",
        what="the delayed thread idle",
    )

    await slow_steps_done(client, busy_thread, at_least=1)
    await client.runs.cancel_many(status="running")

    await _status_becomes(client, busy_thread, running["run_id"], "interrupted")
    assert len(await _done(client, busy_thread)) >= 1  # progress kept
    assert (await client.runs.get(busy_thread, behind["run_id"]))["status"] == "interrupted"  # never ran
    assert [as_dict(s["metadata"])["run_id"] for s in await _history(client, busy_thread)].count(
        behind["run_id"]
    ) == 0


async def test_bulk_cancel_of_all_statuses(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    running = await client.runs.create(thread_id, "slow", input=BUSY)
    await until_running(client, thread_id, running["run_id"])
    pending = await client.runs.create(thread_id, "slow", input={"delay": 0.0, "steps": 1})

    await client.runs.cancel_many(status="all")

    await _status_becomes(client, thread_id, running["run_id"], "interrupted")
    await _status_becomes(client, thread_id, pending["run_id"], "interrupted")
    await eventually(
        lambda: client.threads.get(thread_id),
        lambda t: t["status"] != "busy",
        what="the thread to stop being busy",
    )


async def test_bulk_cancel_by_assistant_spares_other_assistants(client: LangGraphClient) -> None:
    assistant = await client.assistants.create("slow", name="cancel-me")
    mine, other = await new_thread(client), await new_thread(client)
    target = await client.runs.create(mine, assistant["assistant_id"], input=BUSY)
    spared = await client.runs.create(other, "slow", input=BUSY)
    await until_running(client, mine, target["run_id"])
    await until_running(client, other, spared["run_id"])

    response = await client.http.client.post("/runs/cancel", json={"assistant_id": assistant["assistant_id"]})

    assert response.status_code == 204, response.text
    await _status_becomes(client, mine, target["run_id"], "interrupted")
    assert (await client.runs.get(other, spared["run_id"]))["status"] == "running"
    await client.runs.cancel(other, spared["run_id"], wait=True)


async def test_bulk_cancel_by_thread_and_status_stays_on_that_thread(client: LangGraphClient) -> None:
    """graphrun also takes ``thread_id`` with ``status`` (the official server answers 422 to that pair)."""
    mine, other = await new_thread(client), await new_thread(client)
    running = await client.runs.create(mine, "slow", input=BUSY)
    await until_running(client, mine, running["run_id"])
    pending = await client.runs.create(mine, "slow", input={"delay": 0.0, "steps": 1})
    elsewhere = await client.runs.create(other, "counter", input={"count": 0}, after_seconds=600)

    await client.runs.cancel_many(thread_id=mine, status="pending")

    await _status_becomes(client, mine, pending["run_id"], "interrupted")
    assert (await client.runs.get(mine, running["run_id"]))["status"] == "running"
    assert (await client.runs.get(other, elsewhere["run_id"]))["status"] == "pending"
    await client.runs.cancel(mine, running["run_id"], wait=True)
    await client.runs.cancel(other, elsewhere["run_id"], wait=True)


async def test_bulk_cancel_by_assistant_with_a_status_too_is_422_and_cancels_nothing(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input=BUSY)
    await until_running(client, thread_id, run["run_id"])

    response = await client.http.client.post("/runs/cancel", json={"assistant_id": "slow", "status": "all"})

    assert response.status_code == 422, response.text
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "running"
    await client.runs.cancel(thread_id, run["run_id"], wait=True)


# --- if_not_exists ------------------------------------------------------------------------------------------


async def test_runs_sent_at_once_with_if_not_exists_create_make_one_thread(client: LangGraphClient) -> None:
    thread_id = str(uuid4())
    one_step = {"delay": 0.05, "steps": 1}

    created = await asyncio.gather(
        *(client.runs.create(thread_id, "slow", input=one_step, if_not_exists="create") for _ in range(5))
    )

    assert {r["thread_id"] for r in created} == {thread_id}
    await asyncio.gather(*(client.runs.join(thread_id, r["run_id"]) for r in created))
    assert len(await client.threads.search(ids=[thread_id])) == 1
    assert await _done(client, thread_id) == [0, 1, 2, 3, 4]
    runs = await client.runs.list(thread_id, limit=100)
    assert sorted(r["status"] for r in runs) == ["success"] * 5
    assert _writers(await _history(client, thread_id)) == [r["run_id"] for r in _by_creation(runs)]


async def test_if_not_exists_reject_on_a_deleted_thread_is_404_and_creates_nothing(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)
    await client.threads.delete(thread_id)

    for if_not_exists in ("reject", None):
        with pytest.raises(httpx.HTTPStatusError) as excinfo:
            await client.runs.create(thread_id, "counter", input={"count": 0}, if_not_exists=if_not_exists)
        assert status_of(excinfo.value) == 404

    assert await client.threads.search(ids=[thread_id]) == []
    out = await client.runs.wait(thread_id, "counter", input={"count": 0}, if_not_exists="create")
    assert out == {"count": 2, "trail": ["a", "b"]}


# --- after_seconds ------------------------------------------------------------------------------------------


async def test_a_delayed_run_starts_no_earlier_and_a_later_run_does_not_overtake_it(
    client: LangGraphClient,
) -> None:
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    delay_s = 2

    delayed = await client.runs.create(
        thread_id, "slow", input={"delay": 0.0, "steps": 1}, after_seconds=delay_s
    )
    later = await client.runs.create(thread_id, "slow", input={"delay": 0.0, "steps": 1})

    assert (await client.runs.get(thread_id, later["run_id"]))["status"] == "pending"
    await client.runs.join(thread_id, later["run_id"])
    assert (await client.runs.get(thread_id, delayed["run_id"]))["status"] == "success"
    history = await _history(client, thread_id)
    assert _writers(history) == [delayed["run_id"], later["run_id"]]
    # Server timestamps only: the thread was created before the delayed run was, and that run's first
    # checkpoint was written at least `delay_s` after it.
    first_of_delayed = next(s for s in history if as_dict(s["metadata"])["run_id"] == delayed["run_id"])
    assert _at(first_of_delayed["created_at"]) - _at(thread["created_at"]) >= timedelta(seconds=delay_s)
    assert await _done(client, thread_id) == [0, 1]


async def test_delayed_runs_sent_at_once_run_in_creation_order(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    bodies: list[dict[str, Any]] = [{"after_seconds": 1}, {}, {"after_seconds": 1}, {}]

    created = await asyncio.gather(
        *(client.runs.create(thread_id, "slow", input={"delay": 0.0, "steps": 1}, **b) for b in bodies)
    )

    await asyncio.gather(*(client.runs.join(thread_id, r["run_id"]) for r in created))
    runs = await client.runs.list(thread_id, limit=100)
    assert sorted(r["status"] for r in runs) == ["success"] * 4
    assert _writers(await _history(client, thread_id)) == [r["run_id"] for r in _by_creation(runs)]
    assert await _done(client, thread_id) == [0, 1, 2, 3]
