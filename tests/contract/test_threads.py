"""Threads: create/get, metadata updates, search, count and paging, state, copies and deletion."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from graphrun import errors
from graphrun.models import Thread, new_id
from graphrun.stores.base import ControlStore, Page
from graphrun.types import Json, ThreadStatus

from ._support import add_run, finished_run, running_run

INTERRUPTS: dict[str, list[Json]] = {"task-1": [{"value": "approve?", "id": "i-1"}]}


async def _thread(store: ControlStore, metadata: Json | None = None) -> Thread:
    return await store.create_thread(new_id(), metadata or {}, "raise")


def _ids(found: list[Thread]) -> list[str]:
    return [t.thread_id for t in found]


async def test_create_thread_then_get_it(store: ControlStore) -> None:
    thread_id = new_id()
    created = await store.create_thread(thread_id, {"user": "u1"}, "raise")
    got = await store.get_thread(thread_id)

    for found in (created, got):
        assert found.thread_id == thread_id
        assert found.metadata == {"user": "u1"}
        assert found.status == "idle"
        assert found.values is None
        assert found.interrupts == {}


async def test_create_existing_with_raise_is_already_exists(store: ControlStore) -> None:
    first = await _thread(store, {"v": 1})
    with pytest.raises(errors.AlreadyExists):
        await store.create_thread(first.thread_id, {"v": 2}, "raise")
    assert (await store.get_thread(first.thread_id)).metadata == {"v": 1}


async def test_create_existing_with_do_nothing_returns_the_existing_one(store: ControlStore) -> None:
    first = await _thread(store, {"v": 1})
    again = await store.create_thread(first.thread_id, {"v": 2}, "do_nothing")
    assert again.metadata == {"v": 1}
    assert await store.count_threads({}, {}, None) == 1


ThreadOp = Callable[[ControlStore, str], Awaitable[object]]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda s, t: s.get_thread(t), id="get"),
        pytest.param(lambda s, t: s.update_thread(t, {"a": 1}), id="update"),
        pytest.param(lambda s, t: s.delete_thread(t), id="delete"),
        pytest.param(lambda s, t: s.set_thread_state(t, {"a": 1}, {}, "idle"), id="set-state"),
        pytest.param(lambda s, t: s.copy_thread(t, new_id()), id="copy"),
    ],
)
async def test_missing_thread_is_not_found(store: ControlStore, operation: ThreadOp) -> None:
    with pytest.raises(errors.ThreadNotFound):
        await operation(store, new_id())


async def test_update_thread_merges_metadata(store: ControlStore) -> None:
    thread = await _thread(store, {"keep": 1, "change": "old"})

    updated = await store.update_thread(thread.thread_id, {"change": "new", "add": True})

    expected = {"keep": 1, "change": "new", "add": True}
    assert updated.metadata == expected
    assert (await store.get_thread(thread.thread_id)).metadata == expected


@pytest.mark.parametrize(
    ("before", "patch", "expected"),
    [
        pytest.param({"obj": {"a": 1}}, {"obj": {"b": 2}}, {"obj": {"b": 2}}, id="object-value-replaced"),
        pytest.param({"k": "v", "x": 1}, {"k": None}, {"k": None, "x": 1}, id="null-value-stored"),
    ],
)
async def test_update_thread_merge_is_shallow(
    store: ControlStore, before: Json, patch: Json, expected: Json
) -> None:
    """Top-level keys are replaced as wholes, like the official server (Postgres ``metadata || patch``)."""
    thread = await _thread(store, before)

    updated = await store.update_thread(thread.thread_id, patch)

    assert updated.metadata == expected


async def test_search_threads_by_metadata(store: ControlStore) -> None:
    alice = await _thread(store, {"user": "alice", "n": 1, "vip": True})
    await _thread(store, {"user": "bob", "n": 2, "vip": False})
    carol = await _thread(store, {"user": "carol", "n": 1})

    async def search(metadata: Json) -> list[str]:
        found = _ids(await store.search_threads(metadata, {}, None, None, Page(sort_order="asc")))
        assert await store.count_threads(metadata, {}, None) == len(found)
        return found

    assert await search({"user": "alice"}) == [alice.thread_id]
    assert await search({"n": 1}) == [alice.thread_id, carol.thread_id]
    assert await search({"vip": True}) == [alice.thread_id]
    assert await search({"n": 1, "user": "carol"}) == [carol.thread_id]
    assert await search({"user": "dave"}) == []


async def test_search_threads_by_values(store: ControlStore) -> None:
    first = await _thread(store)
    second = await _thread(store)
    await _thread(store)  # no values at all
    await store.set_thread_state(first.thread_id, {"topic": "cats", "turns": 3}, {}, "idle")
    await store.set_thread_state(second.thread_id, {"topic": "dogs", "turns": 3}, {}, "idle")

    page = Page(sort_order="asc")
    assert _ids(await store.search_threads({}, {"topic": "cats"}, None, None, page)) == [first.thread_id]
    both = [first.thread_id, second.thread_id]
    assert _ids(await store.search_threads({}, {"turns": 3}, None, None, page)) == both
    assert _ids(await store.search_threads({}, {"topic": "fish"}, None, None, page)) == []
    assert await store.count_threads({}, {"turns": 3}, None) == 2
    assert await store.count_threads({}, {"topic": "cats"}, None) == 1


@pytest.mark.parametrize("status", ["idle", "busy", "interrupted", "error"])
async def test_search_threads_by_status(store: ControlStore, status: ThreadStatus) -> None:
    by_status: dict[str, str] = {}
    settable: tuple[ThreadStatus, ...] = ("idle", "interrupted", "error")
    for state in settable:
        thread = await _thread(store)
        await store.set_thread_state(thread.thread_id, None, {}, state)
        by_status[state] = thread.thread_id
    by_status["busy"] = (await add_run(store, new_id())).thread_id

    found = await store.search_threads({}, {}, status, None, Page())

    assert _ids(found) == [by_status[status]]
    assert [t.status for t in found] == [status]
    assert await store.count_threads({}, {}, status) == 1
    assert await store.count_threads({}, {}, None) == 4


async def test_search_threads_by_ids(store: ControlStore) -> None:
    threads = [await _thread(store, {"i": i}) for i in range(4)]
    wanted = [threads[0].thread_id, threads[2].thread_id]

    found = await store.search_threads({}, {}, None, [*wanted, new_id()], Page(sort_order="asc"))

    assert _ids(found) == wanted
    assert await store.search_threads({}, {}, None, [], Page()) == []


@pytest.mark.parametrize(("sort_order", "reverse"), [("asc", False), ("desc", True)])
async def test_search_threads_sorted_by_created_at(
    store: ControlStore, sort_order: str, reverse: bool
) -> None:
    created = [(await _thread(store)).thread_id for _ in range(3)]

    found = await store.search_threads({}, {}, None, None, Page(sort_by="created_at", sort_order=sort_order))

    assert _ids(found) == (created[::-1] if reverse else created)


async def test_search_threads_default_order_is_newest_first(store: ControlStore) -> None:
    created = [(await _thread(store)).thread_id for _ in range(3)]
    assert _ids(await store.search_threads({}, {}, None, None, Page())) == created[::-1]


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        pytest.param(2, 0, [0, 1], id="first-page"),
        pytest.param(2, 2, [2, 3], id="second-page"),
        pytest.param(3, 3, [3, 4], id="last-page"),
        pytest.param(1, 5, [], id="past-the-end"),
    ],
)
async def test_search_threads_limit_and_offset(
    store: ControlStore, limit: int, offset: int, expected: list[int]
) -> None:
    created = [(await _thread(store)).thread_id for _ in range(5)]

    found = await store.search_threads({}, {}, None, None, Page(limit=limit, offset=offset, sort_order="asc"))

    assert _ids(found) == [created[i] for i in expected]
    assert await store.count_threads({}, {}, None) == 5


@pytest.mark.parametrize("status", ["idle", "interrupted", "error"])
async def test_set_thread_state(store: ControlStore, status: ThreadStatus) -> None:
    thread = await _thread(store)

    await store.set_thread_state(thread.thread_id, {"messages": ["hi"]}, INTERRUPTS, status)

    got = await store.get_thread(thread.thread_id)
    assert got.values == {"messages": ["hi"]}
    assert got.interrupts == INTERRUPTS
    assert got.status == status


async def test_set_thread_state_keeps_a_busy_thread_busy(store: ControlStore) -> None:
    run = await add_run(store, new_id())
    assert (await store.get_thread(run.thread_id)).status == "busy"

    await store.set_thread_state(run.thread_id, {"edited": True}, INTERRUPTS, "interrupted")

    got = await store.get_thread(run.thread_id)
    assert got.status == "busy"
    assert got.values == {"edited": True}
    assert got.interrupts == INTERRUPTS


@pytest.mark.parametrize("status", ["idle", "interrupted", "error"])
async def test_copy_thread(store: ControlStore, status: ThreadStatus) -> None:
    source = await _thread(store, {"user": "u1"})
    await store.set_thread_state(source.thread_id, {"messages": ["hi"]}, INTERRUPTS, status)
    target_id = new_id()

    copy = await store.copy_thread(source.thread_id, target_id)

    for found in (copy, await store.get_thread(target_id)):
        assert found.thread_id == target_id
        assert found.metadata == {"user": "u1"}
        assert found.values == {"messages": ["hi"]}
        assert found.interrupts == INTERRUPTS
        assert found.status == status
    assert (await store.get_thread(source.thread_id)).values == {"messages": ["hi"]}
    assert await store.count_threads({}, {}, None) == 2


async def test_copy_thread_copies_no_runs(store: ControlStore) -> None:
    source = await finished_run(store, new_id(), values={"n": 1})
    target_id = new_id()

    await store.copy_thread(source.thread_id, target_id)

    assert await store.list_runs(target_id, None, Page()) == []
    assert len(await store.list_runs(source.thread_id, None, Page())) == 1


async def test_delete_thread_returns_inflight_runs_and_deletes_all_runs(store: ControlStore) -> None:
    thread_id = new_id()
    done = await finished_run(store, thread_id)
    running = await running_run(store, thread_id)
    pending = await add_run(store, thread_id)
    other = await add_run(store, new_id())

    inflight = await store.delete_thread(thread_id)

    assert sorted(r.run_id for r in inflight) == sorted([running.run_id, pending.run_id])
    with pytest.raises(errors.ThreadNotFound):
        await store.get_thread(thread_id)
    for run in (done, running, pending):
        with pytest.raises(errors.RunNotFound):
            await store.find_run(run.run_id)
    assert (await store.find_run(other.run_id)).status == "pending"
    assert await store.count_threads({}, {}, None) == 1


async def test_delete_idle_thread_returns_no_runs(store: ControlStore) -> None:
    thread = await _thread(store)
    assert await store.delete_thread(thread.thread_id) == []
    assert await store.count_threads({}, {}, None) == 0


# ---------------------------------------------------------------- time to live

TINY_TTL_MIN = 0.0005  # 30 ms


async def test_a_thread_past_its_own_ttl_is_expired(store: ControlStore) -> None:
    short = new_id()
    await store.create_thread(short, {}, "raise", ttl_minutes=TINY_TTL_MIN)
    await store.create_thread(new_id(), {}, "raise", ttl_minutes=60)
    await store.create_thread(new_id(), {}, "raise")  # no TTL of its own, and no default

    await asyncio.sleep(0.1)

    assert await store.expired_threads(0, 100) == [(short, "delete")]
    assert (await store.get_thread(short)).ttl_minutes == TINY_TTL_MIN


async def test_the_default_ttl_applies_to_threads_without_their_own(store: ControlStore) -> None:
    plain = new_id()
    await store.create_thread(plain, {}, "raise")
    await store.create_thread(new_id(), {}, "raise", ttl_minutes=60)

    await asyncio.sleep(0.1)

    assert await store.expired_threads(TINY_TTL_MIN, 100) == [(plain, "delete")]
    assert await store.expired_threads(0, 100) == []


async def test_a_busy_thread_never_expires(store: ControlStore) -> None:
    run = await add_run(store, new_id())
    await store.update_thread(run.thread_id, {}, ttl_minutes=TINY_TTL_MIN)

    await asyncio.sleep(0.1)

    assert await store.expired_threads(TINY_TTL_MIN, 100) == []


async def test_updating_a_thread_sets_its_ttl_and_restarts_the_clock(store: ControlStore) -> None:
    thread_id = new_id()
    await store.create_thread(thread_id, {}, "raise")
    await asyncio.sleep(0.1)

    await store.update_thread(thread_id, {"k": "v"}, ttl_minutes=1)

    assert await store.expired_threads(0, 100) == []
    assert (await store.get_thread(thread_id)).ttl_minutes == 1


async def test_a_ttl_keeps_its_strategy_and_touching_restarts_the_clock(store: ControlStore) -> None:
    pruned, deleted = new_id(), new_id()
    await store.create_thread(pruned, {}, "raise", ttl_minutes=TINY_TTL_MIN, ttl_strategy="keep_latest")
    await store.create_thread(deleted, {}, "raise")
    await store.update_thread(deleted, {}, ttl_minutes=TINY_TTL_MIN, ttl_strategy="delete")
    await asyncio.sleep(0.1)

    expired = sorted(await store.expired_threads(0, 100))
    assert expired == sorted([(pruned, "keep_latest"), (deleted, "delete")])
    before = await store.get_thread(pruned)
    assert before.ttl_strategy == "keep_latest"

    await store.touch_thread(pruned)  # restarts the clock: updated_at is now

    assert (await store.get_thread(pruned)).updated_at > before.updated_at
    copy = await store.copy_thread(pruned, new_id())
    assert (copy.ttl_minutes, copy.ttl_strategy) == (TINY_TTL_MIN, "keep_latest")
