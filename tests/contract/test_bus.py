"""The event bus contract, on ``LocalBus`` (embedded) and ``RedisBus`` (production): replay by event id,
live following, completion, thread streams, worker wake-ups and cancel signals.

``buses`` gives two handles on one bus, as two processes of a deployment see it (``LocalBus``: the same
bus twice): what is published on one is read on the other. What only one bus does is tested beside it:
tests/unit/test_streams.py (expiry on an injected clock, buffer bookkeeping) and
tests/integration/test_redisbus.py (stream ids, TTLs, trimming, Redis down and back).
"""

from __future__ import annotations

import asyncio

import pytest

from graphrun import encoding
from graphrun.streams import EventBus, StreamEvent
from tests.harness.bus import (
    BOUND_S,
    TICK_S,
    Recorder,
    assert_not_woken,
    close,
    drain,
    id_key,
    next_events,
    payloads,
    published,
    ticks,
)

from .conftest import Buses

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------- replay and following


async def test_replay_in_publish_order(bus: EventBus) -> None:
    events = await published(bus, "run-1", 3)
    await bus.finish("run-1", {"step": 2})

    replayed = await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S))

    assert replayed == events
    assert [e.data for e in replayed] == [encoding.dumps({"step": i}) for i in range(3)]
    assert {e.event for e in replayed} == {"values"}
    assert [id_key(e) for e in events] == sorted(id_key(e) for e in events)
    assert len({e.id for e in events}) == 3


async def test_subscribe_after_an_id_gets_only_later_events(bus: EventBus) -> None:
    events = await published(bus, "run-1", 3)
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after=events[0].id, tick_s=TICK_S)) == events[1:]
    assert await drain(bus.subscribe("run-1", after=events[2].id, tick_s=TICK_S)) == []


async def test_subscribe_after_minus_one_gets_everything(bus: EventBus) -> None:
    events = await published(bus, "run-1", 2)
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == events


async def test_runs_are_separate(bus: EventBus) -> None:
    first = await published(bus, "run-1", 2)
    await published(bus, "run-2", 2)
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == first


async def test_no_id_follows_from_now_as_a_plain_join(bus: EventBus) -> None:
    """As the official server: a join without Last-Event-ID gets what is published from now on, so a
    client that reconnects without an id never receives an event twice."""
    await published(bus, "run-1", 2)
    sub = bus.subscribe("run-1", after=None, tick_s=TICK_S)

    assert await ticks(sub, 1) == [None]  # nothing old is replayed: the first thing is an idle tick
    later = await bus.publish("run-1", "custom", "later")
    await bus.finish("run-1", None)

    assert await drain(sub) == [later]


async def test_an_id_not_of_the_run_follows_from_now(bus: EventBus) -> None:
    await published(bus, "run-1", 2)
    sub = bus.subscribe("run-1", after="1-999999", tick_s=TICK_S)

    assert await ticks(sub, 1) == [None]  # nothing old is replayed: the first thing is an idle tick
    later = await bus.publish("run-1", "custom", "later")
    await bus.finish("run-1", None)

    assert await drain(sub) == [later]


async def test_idle_ticks_yield_none(bus: EventBus) -> None:
    sub = bus.subscribe("run-1", after=None, tick_s=TICK_S)

    assert await ticks(sub, 3) == [None, None, None]
    await close(sub)


async def test_a_live_subscriber_is_woken_by_publish_and_ends_at_finish(bus: EventBus) -> None:
    first = await bus.publish("run-1", "values", {"n": 0})
    seen: asyncio.Queue[StreamEvent] = asyncio.Queue()

    async def consume() -> None:
        # A tick far longer than the test: only the publish and finish can move the subscriber.
        async for e in bus.subscribe("run-1", after="-1", tick_s=3600):
            assert e is not None
            seen.put_nowait(e)

    consumer = asyncio.create_task(consume(), name="consumer")
    async with asyncio.timeout(BOUND_S):
        assert await seen.get() == first  # it is running, and waits for more
        later = await bus.publish("run-1", "values", {"n": 1})
        assert await seen.get() == later
        await bus.finish("run-1", {"ok": True})
        await consumer


async def test_a_subscription_of_a_finished_run_ends_after_replay(bus: EventBus) -> None:
    events = await published(bus, "run-1", 2)
    await bus.finish("run-1", None)
    await bus.finish("run-2", None)

    assert await drain(bus.subscribe("run-1", after=None, tick_s=3600)) == []
    assert await drain(bus.subscribe("run-1", after=events[0].id, tick_s=3600)) == events[1:]
    sub = bus.subscribe("run-2", after=None, tick_s=3600)
    async with asyncio.timeout(BOUND_S):
        with pytest.raises(StopAsyncIteration):
            await anext(sub)


async def test_a_stream_is_joined_and_resumed_with_last_event_id_on_another_process(buses: Buses) -> None:
    bus, other = buses
    events = await published(bus, "run-1", 3)

    # A client reads two events on the other process, and drops.
    first_visit = other.subscribe("run-1", "-1", TICK_S)
    got = await next_events(first_visit, 2)
    await close(first_visit)
    assert got == events[:2]
    assert await other.has_event("run-1", got[-1].id) is True

    # It comes back with Last-Event-ID while the run goes on.
    resumed = other.subscribe("run-1", got[-1].id, tick_s=3600)
    assert await next_events(resumed, 1) == events[2:]
    later = await bus.publish("run-1", "custom", "later")
    await bus.finish("run-1", {"done": True})
    assert await drain(resumed) == [later]


async def test_has_event_tells_a_run_s_ids_from_others(bus: EventBus) -> None:
    """Ids are a run stream's own: with Redis another run's stream may hold the same id (same ms)."""
    mine = await published(bus, "run-1", 2)
    ms, seq = id_key(mine[1])

    assert await bus.has_event("run-1", mine[1].id) is True
    assert await bus.has_event("run-1", f"{ms}-{seq + 1000}") is False
    assert await bus.has_event("run-1", "not-an-id") is False
    assert await bus.has_event("run-3", mine[0].id) is None  # nothing of run-3 here: cannot tell


# ---------------------------------------------------------------- completion


async def test_wait_done(bus: EventBus) -> None:
    await bus.publish("run-1", "values", {})

    assert await bus.wait_done("run-1", timeout_s=TICK_S) is False

    waiter = asyncio.create_task(bus.wait_done("run-1", timeout_s=3600), name="waiter")
    await asyncio.sleep(0)
    assert not waiter.done()
    await bus.finish("run-1", None)

    async with asyncio.timeout(BOUND_S):
        assert await waiter is True
    assert await bus.wait_done("run-1", timeout_s=0) is True


async def test_a_run_s_end_wakes_waiters_on_another_process(buses: Buses) -> None:
    bus, other = buses
    await bus.publish("run-1", "values", {})
    waiter = asyncio.create_task(other.wait_done("run-1", timeout_s=3600), name="waiter")
    await asyncio.sleep(TICK_S)  # time to look and find the run going on: then only the signal wakes it

    await bus.finish("run-1", {"n": 1})

    async with asyncio.timeout(BOUND_S):
        assert await waiter is True
    assert other.output("run-1") == {"n": 1}
    assert await other.wait_done("run-1", 0) is True


async def test_output(bus: EventBus) -> None:
    await bus.publish("run-1", "values", {"n": 1})

    assert bus.output("run-1") is None
    assert bus.output("never-seen") is None
    await bus.finish("run-1", {"n": 1})
    assert bus.output("run-1") == {"n": 1}


# ---------------------------------------------------------------- thread streams


async def test_a_thread_stream_follows_every_run_on_the_thread_from_now(buses: Buses) -> None:
    bus, other = buses
    await bus.publish("old", "values", {"n": 0}, thread_id="t")  # before the client joined: not sent
    sub = other.subscribe_thread("t", None, TICK_S)
    try:
        assert await ticks(sub, 1) == [None]  # joined, idle
        await bus.publish("run-1", "values", {"n": 1}, thread_id="t")
        await bus.publish("elsewhere", "values", {"n": 9}, thread_id="other-thread")
        await bus.finish("run-1", None, thread_id="t")
        await other.publish("run-2", "updates", {"n": 2}, thread_id="t")
        await bus.publish_thread("t", "state_update", {"n": 3})

        got = await next_events(sub, 4)
    finally:
        await close(sub)

    assert payloads(got) == [
        ("values", {"n": 1}),
        ("metadata", {"status": "run_done", "run_id": "run-1"}),
        ("updates", {"n": 2}),
        ("state_update", {"n": 3}),
    ]
    assert [id_key(e) for e in got] == sorted(id_key(e) for e in got)


async def test_a_thread_stream_replays_and_resumes_after_an_id_across_runs(buses: Buses) -> None:
    """A thread stream's ids are its own (with Redis, not those of the runs' streams)."""
    bus, other = buses
    await bus.publish("run-1", "values", {"n": 1}, thread_id="t")
    await bus.publish("run-2", "values", {"n": 2}, thread_id="t")

    everything = bus.subscribe_thread("t", "-1", TICK_S)
    try:
        first, second = await next_events(everything, 2)
    finally:
        await close(everything)
    resumed = other.subscribe_thread("t", first.id, TICK_S)
    try:
        assert await next_events(resumed, 1) == [second]
        third = await bus.publish_thread("t", "state_update", {"n": 3})
        assert await next_events(resumed, 1) == [third]
    finally:
        await close(resumed)
    assert payloads([first, second]) == [("values", {"n": 1}), ("values", {"n": 2})]


# ---------------------------------------------------------------- wake-ups and cancels


async def test_a_new_run_wakes_the_workers_of_every_process(buses: Buses) -> None:
    bus, other = buses
    waiter = asyncio.create_task(other.wait_new_run(timeout_s=3600), name="waiter")
    await asyncio.sleep(0)
    assert not waiter.done()

    bus.notify_new_run()

    async with asyncio.timeout(BOUND_S):
        await waiter


async def test_wait_new_run_times_out_quietly(bus: EventBus) -> None:
    async with asyncio.timeout(BOUND_S):
        await bus.wait_new_run(timeout_s=TICK_S)  # returns, rather than raising TimeoutError


async def test_a_cancel_reaches_the_handlers_of_every_process_once(buses: Buses) -> None:
    bus, other = buses
    here, there, second = Recorder(), Recorder(), Recorder()
    bus.on_cancel(here)
    other.on_cancel(there)
    other.on_cancel(second)

    await bus.cancel("run-1", "rollback")

    assert here.calls == [("run-1", "rollback")]  # this process's handlers are called before it returns
    await there.wait_for("run-1")
    assert there.calls == second.calls == [("run-1", "rollback")]
    # The sender does not get its own signal a second time (through Redis: messages arrive in order, so
    # its echo would come before this later one).
    await other.cancel("run-2", "interrupt")
    await here.wait_for("run-2")
    assert here.calls == [("run-1", "rollback"), ("run-2", "interrupt")]


async def test_a_cancel_without_handlers_is_a_no_op(bus: EventBus) -> None:
    await bus.cancel("run-1", "interrupt")


async def test_a_wake_up_sent_before_the_wait_is_not_lost_and_is_consumed_once(bus: EventBus) -> None:
    bus.notify_new_run()

    async with asyncio.timeout(BOUND_S):
        await bus.wait_new_run(timeout_s=3600)

    await assert_not_woken(bus, "the wake-up was consumed twice")
