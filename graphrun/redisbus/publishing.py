"""Writing a run's events, its end and its thread's events to their streams, as a group commit.

A run's events are one XADD each on its stream (and one on its thread's when it has one); its end writes
its output, the ``done`` marker that ends its subscriptions, and the end message on the ``done``
channel, in that order on one connection. Expiries are pushed back only when this process set them a
tenth of their TTL ago or more, so a run's events are not an XADD and a PEXPIRE each.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio.client import Pipeline

from graphrun import encoding
from graphrun.redisbus._link import DONE, DROPPED, NO_ID, Link, ms, output_cache_runs
from graphrun.streams import StreamEvent
from graphrun.types import Json

# A stream's expiry is pushed back by a write only when this process last set it at least this fraction
# of its TTL ago: a run's events are then one XADD each, not an XADD and a PEXPIRE.
expiry_refresh_fraction = 0.1
# An output up to this size (encoded) travels in the run's end message, so that the process waiting for
# the run has it without reading it back; a larger one is read from its key.
inline_output_max = 16 * 1024


class Writes:
    """Group commit of the bus's writes: the commands of every write made while a batch is on its way go
    together in the next one, one round trip, in the order they were made (so a run's events, and its end,
    stay in order). Under load this turns one round trip per event into one per batch: redis-py spends
    far more per pipeline than per command. Each writer still waits for its own replies, as if alone."""

    def __init__(self, link: Link, on_dropped: Callable[[], None]) -> None:
        """``on_dropped`` is called when a batch was dropped (Redis unreachable)."""
        self._link = link
        self._on_dropped = on_dropped
        self._queued: list[tuple[Callable[[Pipeline], None], asyncio.Future[list[Any] | None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def write(self, commands: Callable[[Pipeline], None]) -> list[Any] | None:
        """Queue ``commands(pipe)``; their replies, or None when Redis was unreachable (dropped)."""
        reply: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._queued.append((commands, reply))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="redisbus:writes")
        return await reply

    async def _send(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            pipe = self._link.redis.pipeline(transaction=False)
            ends = []
            for commands, _ in batch:
                commands(pipe)
                ends.append(len(pipe.command_stack))
            replies = await self._link.write("write", pipe)
            if replies is None:
                self._on_dropped()
            start = 0
            for (_, reply), end in zip(batch, ends, strict=True):
                if not reply.done():  # its writer may have been cancelled meanwhile
                    reply.set_result(None if replies is None else replies[start:end])
                start = end

    async def drain(self, timeout_s: float) -> None:
        """Let what is queued go out (at most ``timeout_s``)."""
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender], timeout=timeout_s)


class Publisher:
    """The bus's writes to run and thread streams."""

    def __init__(
        self,
        link: Link,
        *,
        buffer_ttl_s: float,
        stream_max_events: int,
        thread_log_events: int,
        idle_run_ttl_s: float,
    ) -> None:
        self._link = link
        self._keys = link.keys
        self._ttl_ms = ms(buffer_ttl_s)
        self._idle_run_ttl_ms = ms(idle_run_ttl_s)
        self._stream_max_events = stream_max_events
        self._thread_log_events = thread_log_events
        # When this process last set each stream's expiry (``_expire``); forgotten when a write is dropped:
        # the expiries it would have set were not set.
        self._expiry_set: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.writes = Writes(link, self._expiry_set.clear)

    async def publish(
        self, run_id: str, event: str, data: Any, *, thread_id: str | None = None
    ) -> StreamEvent:
        """Append to the run's stream (and the thread's). The id is the run stream's; ``NO_ID`` when Redis
        was unreachable and the event was dropped."""
        body = encoding.dumps(data)
        key = self._keys.run(run_id)

        def commands(pipe: Pipeline) -> None:
            pipe.xadd(key, {"event": event, "data": body}, maxlen=self._stream_max_events, approximate=True)
            self._expire(pipe, key, self._idle_run_ttl_ms)
            if thread_id is not None:
                self._append_thread(pipe, thread_id, event, body)

        result = await self.writes.write(commands)
        return StreamEvent(NO_ID if result is None else result[0].decode(), event, body)

    async def finish(self, run_id: str, output: Json | None, *, thread_id: str | None = None) -> None:
        """Write the run's end: its output, the marker that ends its subscriptions, its keys' expiry
        after ``buffer_ttl_s``, and the end message that wakes its waiters in every process."""
        key, output_key = self._keys.run(run_id), self._keys.output(run_id)
        body = encoding.dumps(output)
        inline = len(body) <= inline_output_max
        message = encoding.dumps({"from": self._link.sender, "run_id": run_id, "inline": inline})
        if inline:
            message += b"\n" + body

        def commands(pipe: Pipeline) -> None:
            # In this order on one connection: whoever sees the done marker finds the output.
            pipe.set(output_key, body, px=self._ttl_ms)
            pipe.xadd(key, {DONE: b"1"}, maxlen=self._stream_max_events, approximate=True)
            pipe.pexpire(key, self._ttl_ms)
            self._expiry_set.pop(key, None)
            if thread_id is not None:
                done = encoding.dumps({"status": "run_done", "run_id": run_id})
                self._append_thread(pipe, thread_id, "metadata", done)
            pipe.publish(self._keys.channel("done"), message)

        await self.writes.write(commands)

    async def publish_thread(self, thread_id: str, event: str, data: Any) -> StreamEvent:
        """An event of the thread itself (a state update), on its stream only; ``NO_ID`` when dropped."""
        body = encoding.dumps(data)
        result = await self.writes.write(lambda pipe: self._append_thread(pipe, thread_id, event, body))
        return StreamEvent(NO_ID if result is None else result[0].decode(), event, body)

    async def drop_thread(self, thread_id: str) -> None:
        """The thread's stream is replaced by one ``DROPPED`` marker (kept ``buffer_ttl_s``): a follower
        in any process reads it and ends, and a reader who comes later finds nothing before it."""
        key = self._keys.thread(thread_id)

        def drop(pipe: Pipeline) -> None:
            pipe.delete(key)
            pipe.xadd(key, {"event": DROPPED, "data": b"{}"})
            pipe.pexpire(key, self._ttl_ms)

        await self.writes.write(drop)

    def _append_thread(self, pipe: Pipeline, thread_id: str, event: str, body: bytes) -> None:
        key = self._keys.thread(thread_id)
        pipe.xadd(key, {"event": event, "data": body}, maxlen=self._thread_log_events, approximate=True)
        self._expire(pipe, key, self._ttl_ms)

    def _expire(self, pipe: Pipeline, key: str, ttl_ms: int) -> None:
        """PEXPIRE ``key``, unless this process did within ``expiry_refresh_fraction`` of ``ttl_ms``."""
        now = time.monotonic()
        last = self._expiry_set.get(key)
        if last is not None and now - last < ttl_ms / 1000 * expiry_refresh_fraction:
            return
        pipe.pexpire(key, ttl_ms)
        self._expiry_set[key] = now
        self._expiry_set.move_to_end(key)
        if len(self._expiry_set) > output_cache_runs:
            self._expiry_set.popitem(last=False)
