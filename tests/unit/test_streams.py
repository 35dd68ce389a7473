"""What only ``LocalBus``, the in-process event bus of embedded mode, does.

What every bus does, ``LocalBus`` included, is the contract suite (tests/contract/test_bus.py). Here: a
subscriber from now woken in process, buffer and thread log expiry (on an injected clock), buffer
bookkeeping, cancel handlers in order, and event ids unique across runs. Waits are bounded by
``asyncio.timeout`` so that a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio

from graphrun import encoding
from graphrun.streams import LocalBus
from tests.harness.bus import BOUND_S, close, drain, next_events, published

TICK_S = 0.01


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_subscriber_from_now_is_woken_in_process_and_ends_after_finish() -> None:
    bus = LocalBus()
    # A tick far longer than the test: only the publish and finish signals can move the subscriber.
    consumer = asyncio.create_task(drain(bus.subscribe("run-1", after=None, tick_s=3600)), name="consumer")
    await asyncio.sleep(0)  # let the consumer start waiting
    assert not consumer.done()

    events = await published(bus, "run-1", 2)
    await bus.finish("run-1", {"ok": True})

    async with asyncio.timeout(BOUND_S):
        assert await consumer == events


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


# ---------------------------------------------------------------- event ids and thread logs


async def test_event_ids_are_unique_across_the_runs_of_a_process() -> None:
    """So, unlike Redis (tests/contract/test_bus.py), another run's id is never taken for this run's."""
    bus = LocalBus()
    mine = await published(bus, "run-1", 2)
    other = await published(bus, "run-2", 1)

    assert await bus.has_event("run-1", mine[1].id) is True
    assert await bus.has_event("run-1", other[0].id) is False
    assert await bus.has_event("run-3", mine[0].id) is None  # nothing of run-3 here: cannot tell


async def test_a_thread_log_replays_after_a_run_event_s_id() -> None:
    """In one process the thread log holds the runs' own events, ids and all."""
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
