"""Crons in the control store: create, read, replace, search, count, delete, what is due, and firing a
tick once however many workers try (``fire_cron``'s claim), on both databases."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from graphrun import crons, errors
from graphrun.models import Cron, Run, new_id, utcnow
from graphrun.stores.base import ControlStore, Page
from graphrun.types import Json

from ._support import ASSISTANT_ID, GRAPH_ID, add_run, assistant, claim_one, new_run, outcome


async def _setup(store: ControlStore) -> None:
    await store.ensure_system_assistant(ASSISTANT_ID, GRAPH_ID, None)


def _cron(
    *,
    thread_id: str | None = None,
    due_in_s: float = -1.0,
    metadata: Json | None = None,
    enabled: bool = True,
    end_in_s: float | None = None,
) -> Cron:
    now = utcnow()
    return Cron(
        cron_id=new_id(),
        assistant_id=ASSISTANT_ID,
        thread_id=thread_id,
        user_id=None,
        schedule="* * * * *",
        timezone=None,
        end_time=now + timedelta(seconds=end_in_s) if end_in_s is not None else None,
        enabled=enabled,
        on_run_completed=None if thread_id else "delete",
        next_run_date=now + timedelta(seconds=due_in_s),
        payload={"assistant_id": GRAPH_ID, "schedule": "* * * * *"},
        metadata=metadata if metadata is not None else {},
        template={"graph_id": GRAPH_ID, "metadata": {}, "multitask_strategy": "enqueue", "request": {}},
        created_at=now,
        updated_at=now,
    )


async def test_a_cron_is_stored_and_read_back(store: ControlStore) -> None:
    await _setup(store)
    cron = _cron(metadata={"team": "a"}, end_in_s=3600)

    created = await store.create_cron(cron)
    got = await store.get_cron(cron.cron_id)

    for found in (created, got):
        assert found.cron_id == cron.cron_id
        assert found.assistant_id == ASSISTANT_ID
        assert found.thread_id is None
        assert found.metadata == {"team": "a"}
        assert found.payload == cron.payload
        assert found.template == cron.template
        assert found.enabled is True
        assert found.next_run_date == cron.next_run_date
        assert found.end_time == cron.end_time


async def test_replacing_a_cron_keeps_its_tick_unless_given_one(store: ControlStore) -> None:
    await _setup(store)
    cron = await store.create_cron(_cron())

    kept = await store.replace_cron(dataclasses.replace(cron, enabled=False, next_run_date=None))
    later = cron.next_run_date + timedelta(hours=1) if cron.next_run_date else None
    moved = await store.replace_cron(dataclasses.replace(cron, next_run_date=later))

    assert kept.enabled is False
    assert kept.next_run_date == cron.next_run_date
    assert moved.next_run_date == later
    with pytest.raises(errors.CronNotFound):
        await store.replace_cron(dataclasses.replace(cron, cron_id=new_id()))


async def test_search_count_and_delete(store: ControlStore) -> None:
    await _setup(store)
    thread = await store.create_thread(new_id(), {}, "raise")
    a = await store.create_cron(_cron(metadata={"team": "a"}))
    b = await store.create_cron(_cron(thread_id=thread.thread_id, metadata={"team": "b"}, enabled=False))

    everything = await store.search_crons(None, None, None, {}, Page(limit=10))
    assert [c.cron_id for c in everything] == [b.cron_id, a.cron_id]  # newest first
    oldest_first = await store.search_crons(None, None, None, {}, Page(10, 0, "created_at", "asc"))
    assert [c.cron_id for c in oldest_first] == [a.cron_id, b.cron_id]
    assert [c.cron_id for c in await store.search_crons(None, thread.thread_id, None, {}, Page())] == [
        b.cron_id
    ]
    assert [c.cron_id for c in await store.search_crons(None, None, True, {}, Page())] == [a.cron_id]
    assert [c.cron_id for c in await store.search_crons(None, None, None, {"team": "b"}, Page())] == [
        b.cron_id
    ]
    scoped = await store.search_crons(None, None, None, {}, Page(), scope=[{"team": "a"}])
    assert [c.cron_id for c in scoped] == [a.cron_id]
    assert await store.count_crons(None, None, {}) == 2
    assert await store.count_crons(ASSISTANT_ID, None, {"team": "a"}) == 1
    assert await store.count_crons(None, None, {}, scope=[{"team": "c"}]) == 0

    await store.delete_cron(a.cron_id)

    assert await store.count_crons(None, None, {}) == 1
    with pytest.raises(errors.CronNotFound):
        await store.delete_cron(a.cron_id)
    with pytest.raises(errors.CronNotFound):
        await store.get_cron(a.cron_id)


async def test_a_cron_goes_with_its_thread(store: ControlStore) -> None:
    await _setup(store)
    thread = await store.create_thread(new_id(), {}, "raise")
    cron = await store.create_cron(_cron(thread_id=thread.thread_id))

    await store.delete_thread(thread.thread_id)

    with pytest.raises(errors.CronNotFound):
        await store.get_cron(cron.cron_id)


async def test_only_enabled_crons_whose_tick_came_before_their_end_are_due(store: ControlStore) -> None:
    await _setup(store)
    due = await store.create_cron(_cron(due_in_s=-1))
    await store.create_cron(_cron(due_in_s=60))  # not yet
    await store.create_cron(_cron(due_in_s=-1, enabled=False))
    await store.create_cron(_cron(due_in_s=-1, end_in_s=-0.5))  # ended

    assert [c.cron_id for c in await store.due_crons(utcnow(), 100)] == [due.cron_id]


async def test_a_tick_fires_once_however_many_try(store: ControlStore) -> None:
    await _setup(store)
    cron = await store.create_cron(_cron())
    assert cron.next_run_date is not None
    later = cron.next_run_date + timedelta(minutes=1)

    results = await asyncio.gather(*(store.fire_cron(cron, later, new_run(new_id())) for _ in range(8)))

    claimed = [r for r in results if r.claimed]
    assert len(claimed) == 1
    assert claimed[0].run is not None
    assert (await store.get_cron(cron.cron_id)).next_run_date == later
    # A worker that read the cron before the tick moved changes nothing, however late it comes.
    assert not (await store.fire_cron(cron, later + timedelta(minutes=1), new_run(new_id()))).claimed


async def test_a_tick_whose_run_cannot_be_written_is_used_up(store: ControlStore) -> None:
    """A thread cron under ``reject`` on a busy thread: the tick passes without a run (and no error)."""
    await _setup(store)
    thread = await store.create_thread(new_id(), {}, "raise")
    await store.create_run(new_run(thread.thread_id, if_not_exists="reject"))
    cron = await store.create_cron(_cron(thread_id=thread.thread_id))
    assert cron.next_run_date is not None
    later = cron.next_run_date + timedelta(minutes=1)

    fired = await store.fire_cron(
        cron, later, new_run(thread.thread_id, strategy="reject", if_not_exists="reject")
    )

    assert fired.claimed
    assert fired.run is None
    assert fired.skipped is not None
    assert "busy" in fired.skipped
    assert (await store.get_cron(cron.cron_id)).next_run_date == later


async def test_fire_due_writes_each_due_cron_once(store: ControlStore) -> None:
    await _setup(store)
    thread = await store.create_thread(new_id(), {}, "raise")
    on_thread = await store.create_cron(_cron(thread_id=thread.thread_id))
    stateless = await store.create_cron(_cron())
    now = utcnow()

    first, second = await asyncio.gather(crons.fire_due(store, now, 10), crons.fire_due(store, now, 10))

    fired = [f for f in [*first, *second] if f.run is not None]
    assert len(fired) == 2
    runs = {f.run.thread_id: f.run for f in fired if f.run is not None}
    assert thread.thread_id in runs
    assert runs[thread.thread_id].request.config["configurable"]["cron_id"] == on_thread.cron_id
    (temporary,) = [r for tid, r in runs.items() if tid != thread.thread_id]
    assert temporary.request.temporary
    assert temporary.request.on_completion == "delete"
    assert temporary.request.config["configurable"]["cron_id"] == stateless.cron_id
    for cron in (on_thread, stateless):
        after = (await store.get_cron(cron.cron_id)).next_run_date
        assert after is not None
        assert after > now


async def test_deleting_an_assistant_cancels_its_runs_and_takes_its_crons_and_versions(
    store: ControlStore,
) -> None:
    """What ``DELETE /assistants/{id}`` asks of the store: the assistant's runs in flight (and only
    its), each cancelled saying ``assistant_deleted``; then the assistant goes with its versions and
    crons, while the cancelled runs stay readable on their threads."""
    await _setup(store)
    mine = await store.create_assistant(assistant("doomed"), "raise")
    await store.update_assistant(mine.assistant_id, {"name": "doomed v2"})

    async def add_mine() -> Run:
        new = dataclasses.replace(new_run(new_id()), assistant_id=mine.assistant_id)
        return (await store.create_run(new)).run

    await add_mine()
    ran = await claim_one(store)
    await store.finish_run(ran, outcome())  # mine, already ended: nothing to cancel
    await add_mine()
    running = await claim_one(store)
    pending = await add_mine()
    other = await add_run(store, new_id())  # the system assistant's: untouched
    cron = await store.create_cron(dataclasses.replace(_cron(), assistant_id=mine.assistant_id))
    kept = await store.create_cron(_cron())

    inflight = await store.inflight_runs(None, mine.assistant_id, 100)
    assert sorted(r.run_id for r in inflight) == sorted([running.run_id, pending.run_id])
    for run in inflight:
        await store.cancel_run(run.thread_id, run.run_id, "interrupt", "assistant_deleted")
    await store.delete_assistant(mine.assistant_id)

    ended = await store.find_run(pending.run_id)
    assert (ended.status, ended.cancel_reason) == ("interrupted", "assistant_deleted")
    stopping = await store.find_run(running.run_id)
    assert (stopping.status, stopping.cancel_action) == ("running", "interrupt")
    assert stopping.cancel_reason == "assistant_deleted"
    assert (await store.find_run(ran.run_id)).cancel_reason is None
    assert (await store.find_run(other.run_id)).status == "pending"
    with pytest.raises(errors.CronNotFound):
        await store.get_cron(cron.cron_id)
    assert (await store.get_cron(kept.cron_id)).cron_id == kept.cron_id
    with pytest.raises(errors.AssistantNotFound):
        await store.list_assistant_versions(mine.assistant_id, {}, Page())
    with pytest.raises(errors.AssistantNotFound):
        await store.get_assistant(mine.assistant_id)
