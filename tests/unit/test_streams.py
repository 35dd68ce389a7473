"""``LocalBus``: the in-process event bus of embedded mode.

Replay by event id, live following, completion, buffer expiry (on an injected clock), worker wake-ups and
cancel signals. Waits are bounded by ``asyncio.timeout`` so that a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from graphrun import encoding
from graphrun.streams import LocalBus, StreamEvent

TICK_S = 0.01
BOUND_S = 5.0


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def drain(sub: AsyncIterator[StreamEvent | None]) -> list[StreamEvent]:
    """Every event until the subscription ends, idle ticks left out."""
    async with asyncio.timeout(BOUND_S):
        return [e async for e in sub if e is not None]


async def close(sub: AsyncIterator[StreamEvent | None]) -> None:
    assert isinstance(sub, AsyncGenerator)
    await sub.aclose()


async def published(bus: LocalBus, run_id: str, count: int) -> list[StreamEvent]:
    return [await bus.publish(run_id, "values", {"step": i}) for i in range(count)]


def id_key(event: StreamEvent) -> tuple[int, int]:
    ms, seq = event.id.split("-")
    return int(ms), int(seq)


async def test_replay_in_publish_order() -> None:
    bus = LocalBus()
    events = await published(bus, "run-1", 3)
    await bus.finish("run-1", {"step": 2})

    replayed = await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S))

    assert replayed == events
    assert [e.data for e in replayed] == [encoding.dumps({"step": i}) for i in range(3)]
    assert {e.event for e in replayed} == {"values"}
    assert [id_key(e) for e in events] == sorted(id_key(e) for e in events)
    assert len({e.id for e in events}) == 3


async def test_subscribe_after_an_id_gets_only_later_events() -> None:
    bus = LocalBus()
    events = await published(bus, "run-1", 3)
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after=events[0].id, tick_s=TICK_S)) == events[1:]
    assert await drain(bus.subscribe("run-1", after=events[2].id, tick_s=TICK_S)) == []


async def test_subscribe_after_minus_one_gets_everything() -> None:
    bus = LocalBus()
    events = await published(bus, "run-1", 2)
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == events


async def test_runs_are_separate() -> None:
    bus = LocalBus()
    first = await published(bus, "run-1", 2)
    await published(bus, "run-2", 2)
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == first


async def test_no_id_follows_from_now_as_a_plain_join() -> None:
    """As the official server: a join without Last-Event-ID gets what is published from now on, so a
    client that reconnects without an id never receives an event twice."""
    bus = LocalBus()
    await published(bus, "run-1", 2)
    sub = bus.subscribe("run-1", after=None, tick_s=TICK_S)

    assert await anext(sub) is None  # nothing old is replayed: the first thing is an idle tick
    later = await bus.publish("run-1", "custom", "later")
    await bus.finish("run-1", None)

    assert await drain(sub) == [later]


async def test_unknown_id_follows_from_now() -> None:
    bus = LocalBus()
    await published(bus, "run-1", 2)
    sub = bus.subscribe("run-1", after="1-999999", tick_s=TICK_S)

    assert await anext(sub) is None  # nothing old is replayed: the first thing is an idle tick
    later = await bus.publish("run-1", "custom", "later")
    await bus.finish("run-1", None)

    assert await drain(sub) == [later]


async def test_idle_ticks_yield_none() -> None:
    bus = LocalBus()
    sub = bus.subscribe("run-1", after=None, tick_s=TICK_S)

    async with asyncio.timeout(BOUND_S):
        assert [await anext(sub) for _ in range(3)] == [None, None, None]
    await close(sub)


async def test_live_subscriber_is_woken_and_ends_after_finish() -> None:
    bus = LocalBus()
    # A tick far longer than the test: only the publish and finish signals can move the subscriber.
    consumer = asyncio.create_task(drain(bus.subscribe("run-1", after=None, tick_s=3600)), name="consumer")
    await asyncio.sleep(0)  # let the consumer start waiting
    assert not consumer.done()

    events = await published(bus, "run-1", 2)
    await bus.finish("run-1", {"ok": True})

    async with asyncio.timeout(BOUND_S):
        assert await consumer == events


async def test_subscription_of_a_finished_run_ends_after_replay() -> None:
    bus = LocalBus()
    await bus.finish("run-1", None)
    sub = bus.subscribe("run-1", after=None, tick_s=3600)

    async with asyncio.timeout(BOUND_S):
        with pytest.raises(StopAsyncIteration):
            await anext(sub)


async def test_wait_done() -> None:
    bus = LocalBus()
    await bus.publish("run-1", "values", {})

    assert await bus.wait_done("run-1", timeout_s=TICK_S) is False

    waiter = asyncio.create_task(bus.wait_done("run-1", timeout_s=3600), name="waiter")
    await asyncio.sleep(0)
    assert not waiter.done()
    await bus.finish("run-1", None)

    async with asyncio.timeout(BOUND_S):
        assert await waiter is True
    assert await bus.wait_done("run-1", timeout_s=0) is True


async def test_output() -> None:
    bus = LocalBus()
    await bus.publish("run-1", "values", {"n": 1})

    assert bus.output("run-1") is None
    assert bus.output("never-seen") is None
    await bus.finish("run-1", {"n": 1})
    assert bus.output("run-1") == {"n": 1}


async def test_finished_buffers_expire_after_ttl() -> None:
    clock = FakeClock()
    bus = LocalBus(buffer_ttl_s=10.0, clock=clock)
    events = await published(bus, "run-1", 2)
    await bus.finish("run-1", {"n": 1})

    clock.now += 9.9
    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == events
    assert bus.output("run-1") == {"n": 1}

    clock.now += 0.2
    # The buffer is gone: the run is unknown again, so it is not done and has nothing to replay.
    assert await bus.wait_done("run-1", timeout_s=TICK_S) is False
    assert bus.output("run-1") is None
    sub = bus.subscribe("run-1", after=None, tick_s=TICK_S)
    async with asyncio.timeout(BOUND_S):
        assert await anext(sub) is None
    await close(sub)


async def test_running_buffers_never_expire() -> None:
    clock = FakeClock()
    bus = LocalBus(buffer_ttl_s=10.0, clock=clock)
    events = await published(bus, "run-1", 2)

    clock.now += 10_000
    await bus.finish("run-1", None)

    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == events


async def test_wait_new_run_returns_when_notified() -> None:
    bus = LocalBus()
    waiter = asyncio.create_task(bus.wait_new_run(timeout_s=3600), name="waiter")
    await asyncio.sleep(0)
    assert not waiter.done()

    bus.notify_new_run()

    async with asyncio.timeout(BOUND_S):
        await waiter


async def test_notify_before_wait_is_not_lost_and_is_consumed_once() -> None:
    bus = LocalBus()
    bus.notify_new_run()

    async with asyncio.timeout(BOUND_S):
        await bus.wait_new_run(timeout_s=3600)

    waiter = asyncio.create_task(bus.wait_new_run(timeout_s=3600), name="waiter")
    await asyncio.sleep(0)
    assert not waiter.done()  # the wake-up was consumed by the first wait
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter


async def test_wait_new_run_times_out_quietly() -> None:
    bus = LocalBus()

    async with asyncio.timeout(BOUND_S):
        await bus.wait_new_run(timeout_s=TICK_S)  # returns, rather than raising TimeoutError


async def test_cancel_calls_every_handler_in_order() -> None:
    bus = LocalBus()
    calls: list[tuple[str, str, str]] = []

    async def first(run_id: str, action: str) -> None:
        calls.append(("first", run_id, action))

    async def second(run_id: str, action: str) -> None:
        calls.append(("second", run_id, action))

    bus.on_cancel(first)
    bus.on_cancel(second)
    await bus.cancel("run-1", "rollback")

    assert calls == [("first", "run-1", "rollback"), ("second", "run-1", "rollback")]


async def test_cancel_without_handlers_is_a_no_op() -> None:
    await LocalBus().cancel("run-1", "interrupt")


async def test_waiting_on_a_run_this_process_never_sees_leaves_nothing_behind() -> None:
    # /join of a run finished long ago (its buffer expired) waits on the bus, then reads the store:
    # the empty buffer made for waiting must go with the last waiter, or every such join leaks.
    bus = LocalBus()

    assert await bus.wait_done("old-run", 0.01) is False
    stream = bus.subscribe("other-run", None, tick_s=0.01)
    assert await anext(stream) is None  # an idle tick
    await stream.aclose()

    assert bus.buffered_runs == 0


async def test_a_buffer_with_events_stays_after_its_waiter_leaves() -> None:
    bus = LocalBus()
    await bus.publish("r", "values", {"n": 1})

    assert await bus.wait_done("r", 0.01) is False

    assert bus.buffered_runs == 1


# ---------------------------------------------------------------- event ids and thread streams


async def test_has_event_tells_a_run_s_ids_from_others() -> None:
    bus = LocalBus()
    mine = await published(bus, "run-1", 2)
    other = await published(bus, "run-2", 1)

    assert await bus.has_event("run-1", mine[1].id) is True
    assert await bus.has_event("run-1", other[0].id) is False
    assert await bus.has_event("run-3", mine[0].id) is None  # nothing of run-3 here: cannot tell


async def next_events(sub: AsyncIterator[StreamEvent | None], count: int) -> list[StreamEvent]:
    found: list[StreamEvent] = []
    async with asyncio.timeout(BOUND_S):
        async for e in sub:
            if e is not None:
                found.append(e)
            if len(found) == count:
                return found
    raise AssertionError(f"the subscription ended after {len(found)} of {count} events")


async def test_a_thread_stream_follows_every_run_on_the_thread_from_now() -> None:
    bus = LocalBus()
    await bus.publish("old", "values", {"n": 0}, thread_id="t")  # before the client joined: not sent
    sub = bus.subscribe_thread("t", None, TICK_S)
    try:
        await bus.publish("run-1", "values", {"n": 1}, thread_id="t")
        await bus.publish("elsewhere", "values", {"n": 9}, thread_id="other-thread")
        await bus.finish("run-1", None, thread_id="t")
        await bus.publish("run-2", "updates", {"n": 2}, thread_id="t")
        await bus.publish_thread("t", "state_update", {"n": 3})

        got = await next_events(sub, 4)
    finally:
        await close(sub)

    assert [(e.event, encoding.loads(e.data)) for e in got] == [
        ("values", {"n": 1}),
        ("metadata", {"status": "run_done", "run_id": "run-1"}),
        ("updates", {"n": 2}),
        ("state_update", {"n": 3}),
    ]
    assert [id_key(e) for e in got] == sorted(id_key(e) for e in got)


async def test_a_thread_stream_replays_after_an_id_across_runs() -> None:
    bus = LocalBus()
    first = await bus.publish("run-1", "values", {"n": 1}, thread_id="t")
    second = await bus.publish("run-2", "values", {"n": 2}, thread_id="t")

    after_first = bus.subscribe_thread("t", first.id, TICK_S)
    everything = bus.subscribe_thread("t", "-1", TICK_S)
    try:
        assert await next_events(after_first, 1) == [second]
        assert await next_events(everything, 2) == [first, second]
    finally:
        await close(after_first)
        await close(everything)


async def test_a_dropped_thread_log_ends_its_followers_and_replays_nothing() -> None:
    """A deleted thread's id may be taken again, by another owner: nothing of the old log is his."""
    bus = LocalBus()
    await bus.publish("run-1", "values", {"n": 1}, thread_id="t")
    follower = bus.subscribe_thread("t", "-1", TICK_S)
    try:
        assert len(await next_events(follower, 1)) == 1
        await bus.drop_thread("t")
        async with asyncio.timeout(5):  # (it would follow forever)
            assert [e async for e in follower if e is not None] == [], "it ends"
    finally:
        await close(follower)
    fresh = bus.subscribe_thread("t", "-1", TICK_S)
    try:
        new = await bus.publish("run-2", "values", {"n": 2}, thread_id="t")
        assert await next_events(fresh, 1) == [new]
    finally:
        await close(fresh)


async def test_a_thread_log_keeps_only_its_newest_events() -> None:
    bus = LocalBus(thread_log_events=3)
    events = [await bus.publish(f"run-{i}", "values", {"n": i}, thread_id="t") for i in range(5)]

    sub = bus.subscribe_thread("t", "-1", TICK_S)
    try:
        assert await next_events(sub, 3) == events[2:]
        newest = await bus.publish("run-5", "values", {"n": 5}, thread_id="t")
        assert await next_events(sub, 1) == [newest]
    finally:
        await close(sub)


async def test_an_unwatched_thread_log_expires_a_watched_one_stays() -> None:
    clock = FakeClock()
    bus = LocalBus(buffer_ttl_s=10, clock=clock)
    await bus.publish("run-1", "values", {}, thread_id="quiet")
    await bus.publish("run-2", "values", {}, thread_id="watched")
    sub = bus.subscribe_thread("watched", None, TICK_S)
    try:
        async with asyncio.timeout(BOUND_S):
            assert await anext(sub) is None  # subscribed, idle
        clock.now += 11
        bus.buffered_runs  # noqa: B018 - reading it runs the expiry
        replay_quiet = bus.subscribe_thread("quiet", "-1", TICK_S)
        try:
            async with asyncio.timeout(BOUND_S):
                assert await anext(replay_quiet) is None  # its log went: nothing to replay
        finally:
            await close(replay_quiet)
        await bus.publish("run-3", "values", {"n": 3}, thread_id="watched")
        assert [encoding.loads(e.data) for e in await next_events(sub, 1)] == [{"n": 3}]
    finally:
        await close(sub)


async def _replays_anything(bus: LocalBus, thread_id: str) -> bool:
    sub = bus.subscribe_thread(thread_id, "-1", TICK_S)
    try:
        async with asyncio.timeout(BOUND_S):
            return await anext(sub) is not None
    finally:
        await close(sub)


async def test_a_thread_log_written_again_lives_on_then_expires() -> None:
    clock = FakeClock()
    bus = LocalBus(buffer_ttl_s=10, clock=clock)
    await bus.publish("run-1", "values", {}, thread_id="t")
    clock.now += 8
    await bus.publish("run-2", "values", {}, thread_id="t")

    clock.now += 3  # 11 s after it was made, 3 s after it was last written
    assert await _replays_anything(bus, "t")

    clock.now += 25  # well past the TTL since the last write or watch
    bus.buffered_runs  # noqa: B018 - reading it runs the expiry
    clock.now += 11
    assert not await _replays_anything(bus, "t")
