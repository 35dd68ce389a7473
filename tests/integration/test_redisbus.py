"""What only ``RedisBus``, the event bus of production mode, does, against a real Redis.

What every bus does, ``RedisBus`` included, is the contract suite (tests/contract/test_bus.py). Here: the
SSE ids are Redis stream entry ids, streams are trimmed, runs and thread streams expire by TTL, a failing
or stray message on a channel is survived, wake-ups stay in process when asked to, and a Redis that is
down or comes back. Redis is found at GRAPHRUN_TEST_REDIS_URI (default redis://127.0.0.1:6379/15); every
test has its own key prefix and deletes its keys. Waits are bounded by ``asyncio.timeout`` so that a
regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from graphrun import encoding
from graphrun.errors import ConfigError
from graphrun.redisbus import NO_ID, RedisBus
from graphrun.streams import EventBus
from tests.harness.bus import (
    BOUND_S,
    BOUNDED,
    TICK_S,
    Recorder,
    assert_not_woken,
    close,
    drain,
    key_prefix,
    next_events,
    payloads,
    published,
    reachable_redis,
    ticks,
    until_idle,
)
from tests.harness.ports import free_port
from tests.harness.waiting import eventually

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def redis_uri() -> str:
    return await reachable_redis()


@pytest.fixture
async def raw(redis_uri: str) -> AsyncIterator[Redis]:
    """A plain client, to look at what the bus left in Redis."""
    client = Redis.from_url(redis_uri)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(raw: Redis) -> AsyncIterator[str]:
    async with key_prefix(raw) as name:
        yield name


@pytest.fixture
async def bus(redis_uri: str, prefix: str) -> AsyncIterator[RedisBus]:
    async with RedisBus(redis_uri, prefix=prefix) as b:
        yield b


@pytest.fixture
async def other(redis_uri: str, prefix: str) -> AsyncIterator[RedisBus]:
    """A second bus on the same Redis and prefix, with its own client and listener: another process."""
    async with RedisBus(redis_uri, prefix=prefix) as b:
        yield b


@pytest.fixture
def dead_uri() -> str:
    """A Redis URI at a port nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


# ---------------------------------------------------------------- Redis streams


def as_event_bus(bus: RedisBus) -> EventBus:
    return bus  # mypy checks here that RedisBus implements the protocol the API, runner and worker use


async def test_the_sse_ids_are_the_redis_stream_entry_ids(bus: RedisBus, raw: Redis, prefix: str) -> None:
    events = await published(bus, "run-1", 3)
    await bus.finish("run-1", {"step": 2})

    assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == events
    # The SSE ids are the stream's own entry ids (the last entry is the end marker).
    entries: Any = await raw.xrange(f"{prefix}:run:run-1")
    assert [entry_id.decode() for entry_id, _ in entries[:3]] == [e.id for e in events]


async def test_reading_runs_that_do_not_exist_writes_nothing(bus: RedisBus, raw: Redis, prefix: str) -> None:
    """A join of a run finished long ago waits on the bus, then reads the store: waiting must not leak."""
    assert await bus.wait_done("old-run", TICK_S) is False
    stream = bus.subscribe("other-run", None, tick_s=TICK_S)
    assert await ticks(stream, 1) == [None]
    await close(stream)
    assert await bus.has_event("old-run", "1-1") is None

    assert [key async for key in raw.scan_iter(match=f"{prefix}:*")] == []


async def test_streams_are_trimmed_to_about_their_bound(redis_uri: str, prefix: str) -> None:
    """Redis trims whole nodes (``MAXLEN ~``): the newest events stay, at least as many as the bound."""
    async with RedisBus(redis_uri, prefix=prefix, stream_max_events=10, thread_log_events=10) as bus:
        events = [await bus.publish("run-1", "values", {"n": i}, thread_id="t") for i in range(300)]
        await bus.finish("run-1", None, thread_id="t")

        run_kept = await drain(bus.subscribe("run-1", "-1", TICK_S))
        sub = bus.subscribe_thread("t", "-1", TICK_S)
        thread_kept = await until_idle(sub)
        await close(sub)

    assert 10 <= len(run_kept) < 300
    assert run_kept == events[-len(run_kept) :]
    assert 11 <= len(thread_kept) < 301  # and the run's end
    assert payloads(thread_kept)[-1] == ("metadata", {"status": "run_done", "run_id": "run-1"})
    assert payloads(thread_kept)[:-1] == payloads(events[-(len(thread_kept) - 1) :])


# ---------------------------------------------------------------- expiry


async def test_a_finished_run_expires_after_the_ttl(redis_uri: str, prefix: str) -> None:
    async with RedisBus(redis_uri, prefix=prefix, buffer_ttl_s=1.0) as bus:
        events = await published(bus, "run-1", 2)
        await bus.finish("run-1", {"n": 1})
        assert await drain(bus.subscribe("run-1", after="-1", tick_s=TICK_S)) == events
        assert bus.output("run-1") == {"n": 1}

        await eventually(
            lambda: bus.has_event("run-1", events[0].id),
            lambda r: r is None,
            what="the run's keys to expire",
            **BOUNDED,
        )

        async def output() -> Any:
            return bus.output("run-1")

        await eventually(output, lambda r: r is None, what="the output to go as well", **BOUNDED)

        # The run is unknown again: not done, nothing to replay.
        assert await bus.wait_done("run-1", timeout_s=TICK_S) is False
        sub = bus.subscribe("run-1", after="-1", tick_s=TICK_S)
        assert await ticks(sub, 1) == [None]
        await close(sub)


async def test_a_running_run_does_not_expire_at_the_ttl(redis_uri: str, prefix: str) -> None:
    async with RedisBus(redis_uri, prefix=prefix, buffer_ttl_s=0.5) as bus:
        running = await published(bus, "running", 2)
        ended = await published(bus, "ended", 1)
        await bus.finish("ended", None)

        # Once the run that ended with it is gone, the TTL has passed for the one still running too.
        await eventually(
            lambda: bus.has_event("ended", ended[0].id),
            lambda r: r is None,
            what="the ended run to expire",
            **BOUNDED,
        )
        assert await bus.has_event("running", running[0].id) is True
        await bus.finish("running", None)
        assert await drain(bus.subscribe("running", "-1", TICK_S)) == running


async def test_a_thread_stream_expires_after_its_last_write(redis_uri: str, prefix: str) -> None:
    async with RedisBus(redis_uri, prefix=prefix, buffer_ttl_s=0.5) as bus:
        await bus.publish("run-1", "values", {}, thread_id="quiet")

        async def replayable() -> int:
            sub = bus.subscribe_thread("quiet", "-1", TICK_S)
            try:
                return len(await until_idle(sub))
            finally:
                await close(sub)

        assert await replayable() == 1
        await eventually(replayable, lambda n: n == 0, what="the thread's stream to expire", **BOUNDED)


# ---------------------------------------------------------------- thread streams


async def test_a_dropped_thread_stream_ends_its_followers_and_replays_nothing(
    bus: RedisBus, other: RedisBus
) -> None:
    """A deleted thread's id may be taken again, by another owner: a follower in another process ends,
    and a reader from the start sees only what came after the drop."""
    await bus.publish("run-1", "values", {"n": 1}, thread_id="t")
    follower = other.subscribe_thread("t", "-1", TICK_S)
    try:
        assert len(await next_events(follower, 1)) == 1
        await bus.drop_thread("t")
        async with asyncio.timeout(10):  # (it would follow forever)
            rest = [e async for e in follower]
    finally:
        await close(follower)
    fresh = other.subscribe_thread("t", "-1", TICK_S)
    try:
        await bus.publish("run-2", "values", {"n": 2}, thread_id="t")
        got = await next_events(fresh, 1)
    finally:
        await close(fresh)

    assert [e for e in rest if e is not None] == [], "it ends, having seen nothing more"
    assert payloads(got) == [("values", {"n": 2})]


async def test_a_drop_marker_already_there_is_skipped_whatever_its_time(
    other: RedisBus, raw: Redis, prefix: str
) -> None:
    """Whether a drop came before a subscription is read from the stream, not from clocks: a marker stamped
    ahead of this host's clock (a Redis whose clock runs ahead, or the same millisecond) that was there
    before the subscription began is skipped, and the events after it are followed."""
    ahead_ms = int(time.time() * 1000) + 60_000
    await raw.xadd(f"{prefix}:thread:t", {"event": "__dropped__", "data": b"{}"}, id=f"{ahead_ms}-0")
    fresh = other.subscribe_thread("t", "-1", TICK_S)
    try:
        assert await anext(fresh) is None  # the subscription has begun (an idle tick): the marker was before
        await raw.xadd(f"{prefix}:thread:t", {"event": "values", "data": encoding.dumps({"n": 2})})
        got = await next_events(fresh, 1)
    finally:
        await close(fresh)

    assert payloads(got) == [("values", {"n": 2})]


# ---------------------------------------------------------------- across processes


async def test_a_failing_cancel_handler_does_not_stop_the_others(bus: RedisBus, other: RedisBus) -> None:
    after = Recorder()

    async def broken(run_id: str, action: str) -> None:
        raise RuntimeError("handler bug")

    other.on_cancel(broken)
    other.on_cancel(after)
    with capture_logs() as logs:
        await bus.cancel("run-1", "interrupt")
        await after.wait_for("run-1")
        await other.cancel("run-2", "interrupt")  # the listener lives on, and so does the caller

    assert after.calls == [("run-1", "interrupt"), ("run-2", "interrupt")]
    assert [e["run_id"] for e in logs if e["event"] == "cancel_handler_failed"] == ["run-1", "run-2"]


async def test_a_stray_message_on_a_channel_is_logged_and_skipped(
    bus: RedisBus, raw: Redis, prefix: str
) -> None:
    handler = Recorder()
    bus.on_cancel(handler)
    with capture_logs() as logs:
        await raw.publish(f"{prefix}:cancel", b"not json")
        await raw.publish(f"{prefix}:cancel", b"[1, 2]")
        signal = {"from": "another-process", "run_id": "run-1", "action": "interrupt"}
        await raw.publish(f"{prefix}:cancel", encoding.dumps(signal))
        await handler.wait_for("run-1")  # the listener lives on

    assert handler.calls == [("run-1", "interrupt")]
    assert [e["event"] for e in logs].count("redis_message_invalid") == 2


async def test_wake_ups_can_stay_in_process(redis_uri: str, prefix: str, other: RedisBus) -> None:
    """``share_wakeups=False`` (production mode, where PostgreSQL NOTIFY wakes other processes): this
    process's workers wake, other processes hear nothing from Redis."""
    async with RedisBus(redis_uri, prefix=prefix, share_wakeups=False) as quiet:
        waiter = asyncio.create_task(other.wait_new_run(timeout_s=3600), name="waiter")
        quiet.notify_new_run()
        async with asyncio.timeout(BOUND_S):
            await quiet.wait_new_run(timeout_s=3600)  # at once, in process
        # A message sent after it: once it is here, a shared wake-up would be too.
        marker = Recorder()
        other.on_cancel(marker)
        await quiet.cancel("marker", "interrupt")
        await marker.wait_for("marker")
        done, _ = await asyncio.wait([waiter], timeout=TICK_S)
        assert not done, "the wake-up went to another process"
        waiter.cancel()


async def test_a_wake_up_is_consumed_once_and_not_echoed_back(bus: RedisBus, other: RedisBus) -> None:
    marker = Recorder()
    bus.on_cancel(marker)
    bus.notify_new_run()
    async with asyncio.timeout(BOUND_S):
        await bus.wait_new_run(timeout_s=3600)  # at once, in process
        await other.wait_new_run(timeout_s=3600)  # so Redis has it now
    # A message sent after it: once it is here, the echo of the wake-up would be too.
    await other.cancel("marker", "interrupt")
    await marker.wait_for("marker")

    await assert_not_woken(bus, "the wake-up was delivered twice")


# ---------------------------------------------------------------- Redis down, Redis back


async def test_with_redis_down_writes_are_dropped_and_readers_tick(dead_uri: str) -> None:
    handler = Recorder()
    with capture_logs() as logs:
        async with RedisBus(dead_uri, prefix="graphrun-test-down") as bus:
            bus.on_cancel(handler)
            assert (await bus.publish("run-1", "values", {"n": 1}, thread_id="t")).id == NO_ID
            assert (await bus.publish_thread("t", "state_update", {})).id == NO_ID
            await bus.finish("run-1", {"n": 1}, thread_id="t")
            await bus.cancel("run-2", "interrupt")
            bus.notify_new_run()

            # What stays in the process still works: a cancel, a wake-up, a run that ended here.
            assert handler.calls == [("run-2", "interrupt")]
            async with asyncio.timeout(BOUND_S):
                await bus.wait_new_run(timeout_s=3600)
            assert await bus.wait_done("run-1", 0) is True
            assert bus.output("run-1") == {"n": 1}
            # What needs Redis says it cannot tell, or ticks so that the API reads the run's row.
            assert await bus.wait_done("run-3", TICK_S) is False
            assert await bus.has_event("run-3", "1-1") is None
            assert await bus.ping() is False
            sub = bus.subscribe("run-3", "-1", TICK_S)
            assert await ticks(sub, 3) == [None, None, None]
            await close(sub)
            thread_sub = bus.subscribe_thread("t", None, TICK_S)
            assert await ticks(thread_sub, 3) == [None, None, None]
            await close(thread_sub)

    warnings = [e for e in logs if e["event"] == "redis_unreachable"]
    assert len(warnings) == 1, "one warning per outage, not one per call"
    assert warnings[0]["log_level"] == "warning"


class Relay:
    """A TCP relay to Redis that a test can cut and restore: Redis going away and coming back, as the
    bus sees it, without touching the real server."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer), name="relay-up"),
            asyncio.create_task(self._pipe(up_reader, writer), name="relay-down"),
        ]
        self._pipes.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def test_the_bus_recovers_when_redis_comes_back(redis_uri: str, prefix: str, other: RedisBus) -> None:
    target = urlsplit(redis_uri)
    relay = Relay(target.hostname or "127.0.0.1", target.port or 6379)
    await relay.start()
    relayed = urlunsplit(target._replace(netloc=f"127.0.0.1:{relay.port}"))
    handler = Recorder()
    try:
        with capture_logs() as logs:
            async with RedisBus(relayed, prefix=prefix) as bus:
                bus.on_cancel(handler)
                before = await bus.publish("run-1", "values", {"n": 1})
                sub = bus.subscribe("run-1", before.id, TICK_S)
                assert await ticks(sub, 1) == [None]

                await relay.stop()
                assert (await bus.publish("run-1", "values", {"n": 2})).id == NO_ID
                assert await ticks(sub, 2) == [None, None]  # the subscription lives on, idle

                await relay.start()
                await eventually(bus.ping, bool, what="the bus to reach Redis again", **BOUNDED)
                after = await bus.publish("run-1", "values", {"n": 3})
                assert after.id != NO_ID
                await bus.finish("run-1", None)
                assert await drain(sub) == [after]  # the same subscription, from where it was

                # The listener subscribed again: cancels from other processes arrive once more.
                async def cancel_arrived() -> bool:
                    await other.cancel("run-2", "interrupt")
                    await asyncio.sleep(0.1)
                    return ("run-2", "interrupt") in handler.calls

                await eventually(cancel_arrived, bool, what="a cancel from another process", **BOUNDED)
    finally:
        with contextlib.suppress(AssertionError):
            await relay.stop()

    assert await drain(other.subscribe("run-1", "-1", TICK_S)) == [before, after]
    events = [e["event"] for e in logs if e["event"].startswith("redis_")]
    assert events[:2] == ["redis_unreachable", "redis_reachable"]


# ---------------------------------------------------------------- clients


async def test_a_client_with_a_short_socket_timeout_still_waits_whole_ticks(
    redis_uri: str, prefix: str
) -> None:
    """redis-py cuts a read at its socket timeout (5 s by default): a blocking read must end before."""
    client = Redis.from_url(redis_uri, socket_timeout=1.0)
    try:
        with capture_logs() as logs:
            async with RedisBus(client, prefix=prefix) as bus:
                sub = bus.subscribe("run-1", None, tick_s=2.5)
                assert await ticks(sub, 1) == [None]
                event = await bus.publish("run-1", "values", {"n": 1})
                await bus.finish("run-1", None)
                assert await drain(sub) == [event]
    finally:
        await client.aclose()
    assert [e for e in logs if e["event"] == "redis_unreachable"] == []


async def test_a_client_that_decodes_responses_is_refused(redis_uri: str) -> None:
    client = Redis.from_url(redis_uri, decode_responses=True)
    try:
        with pytest.raises(ConfigError, match="decode_responses=False"):
            RedisBus(client)
    finally:
        await client.aclose()
