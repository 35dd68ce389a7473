"""Reading a run's or a thread's stream: ``subscribe`` follows a run until its ``done`` marker (from its
start, a known id, or now), ``subscribe_thread`` a thread for as long as its reader wants; both give
``None`` on idle ticks and on every tick while Redis is unreachable, on which the API re-reads the run's
row."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator
from typing import Any

from graphrun.redisbus._link import DONE, DROPPED, NO_ID, Link, Unreachable, ms
from graphrun.streams import StreamEvent

# Most entries one stream read returns.
read_batch_events = 500

_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")

_Entries = list[tuple[str, dict[bytes, bytes]]]


class Subscriptions:
    """The bus's reads of run and thread streams."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._redis = link.redis
        self._keys = link.keys

    async def has_event(self, run_id: str, event_id: str) -> bool | None:
        """Is ``event_id`` one of the run's events? None when no one can tell: the run's stream does not
        exist (not started, or expired) or Redis is unreachable."""
        if not _STREAM_ID.fullmatch(event_id):
            return False
        key = self._keys.run(run_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.exists(key)
        pipe.xrange(key, min=event_id, max=event_id, count=1)
        try:
            exists, found = await self._link.call("has_event", pipe.execute)
        except Unreachable:
            return None
        return bool(found) if exists else None

    async def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Events after ``after`` until the run is done: all of them for ``-1``, only those published from
        now on for None (a plain join, as on the official server; an id not of this run likewise);
        ``None`` on idle ticks, and on every tick while Redis is unreachable."""
        key = self._keys.run(run_id)
        loop = asyncio.get_running_loop()
        start: tuple[str, bool] | None = None
        while start is None:
            tick_end = loop.time() + tick_s
            try:
                start = await self._run_start(run_id, after)
            except Unreachable:
                await asyncio.sleep(tick_end - loop.time())
                yield None
        position, finished = start
        while True:
            tick_end = loop.time() + tick_s
            try:
                # A finished run is read to its end without waiting.
                entries = await self._read(key, position, None if finished else tick_s)
            except Unreachable:
                await asyncio.sleep(tick_end - loop.time())
                yield None
                continue
            if not entries:
                if finished:
                    return
                yield None
            for entry_id, fields in entries:
                position = entry_id
                if DONE in fields:
                    return
                yield _event(entry_id, fields)

    async def _run_start(self, run_id: str, after: str | None) -> tuple[str, bool]:
        """Where a subscription starts, and whether the run has ended, read at one instant."""
        key = self._keys.run(run_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.exists(self._keys.output(run_id))
        pipe.xrevrange(key, count=1)
        known = after if after is not None and _STREAM_ID.fullmatch(after) else None
        if known is not None:
            pipe.xrange(key, min=known, max=known, count=1)
        finished, last, *found = await self._link.call("subscribe", pipe.execute)
        if after == "-1":
            return NO_ID, bool(finished)
        if known is not None and found[0]:
            return known, bool(finished)
        return _last_id(last), bool(finished)

    def subscribe_thread(
        self, thread_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """The thread's events from now on (after ``after``, by id order, as far as the stream reaches
        back); ``None`` on idle ticks and while Redis is unreachable. It never ends by itself. "Now" is
        when the subscription first reads Redis, at its first iteration: across processes there is no
        earlier instant to hold on to."""
        return self._follow_thread(thread_id, after, tick_s)

    async def _follow_thread(
        self, thread_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        key = self._keys.thread(thread_id)
        loop = asyncio.get_running_loop()
        position = after if after is not None and _STREAM_ID.fullmatch(after) else None
        if after == "-1":
            position = NO_ID
        # A drop marker already in the stream when this subscription began is skipped; one written after
        # ends it. Told apart by the stream's newest id at the start, not by clocks: a marker written in
        # the same millisecond, or by a Redis whose clock differs from this host's, is still placed right.
        newest: str | None = None
        while True:
            tick_end = loop.time() + tick_s
            try:
                if newest is None:
                    last = await self._link.call(
                        "subscribe_thread", functools.partial(self._redis.xrevrange, key, count=1)
                    )
                    newest = _last_id(last)
                if position is None:
                    position = newest
                entries = await self._read(key, position, tick_s)
            except Unreachable:
                await asyncio.sleep(tick_end - loop.time())
                yield None
                continue
            if not entries:
                yield None
            for entry_id, fields in entries:
                position = entry_id
                if fields[b"event"].decode() == DROPPED:
                    if _id_key(entry_id) > _id_key(newest or NO_ID):
                        return  # the thread was deleted while followed
                    continue
                yield _event(entry_id, fields)

    async def _read(self, key: str, position: str, wait_s: float | None) -> _Entries:
        """The entries after ``position``, waiting up to ``wait_s`` for one (None: not waiting)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait_s or 0.0)
        while True:
            block_s = None if wait_s is None else max(0.001, deadline - loop.time())
            if block_s is not None and self._link.max_block_s is not None:
                block_s = min(block_s, self._link.max_block_s)
            block_ms = None if block_s is None else ms(block_s)
            read = functools.partial(
                self._redis.xread, {key: position}, count=read_batch_events, block=block_ms
            )
            reply = await self._link.call("read", read, block_s or 0.0)
            entries = _entries(reply)
            if entries or block_s is None or loop.time() >= deadline:
                return entries


def _event(entry_id: str, fields: dict[bytes, bytes]) -> StreamEvent:
    return StreamEvent(entry_id, fields[b"event"].decode(), fields[b"data"])


def _id_key(entry_id: str) -> tuple[int, int]:
    """A stream id (``<ms>-<seq>``) as numbers, for ordering."""
    ms_part, _, seq = entry_id.partition("-")
    return int(ms_part), int(seq or 0)


def _last_id(reply: Any) -> str:
    """The id in XREVRANGE's reply for ``COUNT 1``; ``NO_ID`` for an empty (or missing) stream."""
    return str(reply[0][0].decode()) if reply else NO_ID


def _entries(reply: Any) -> _Entries:
    """XREAD's reply for one stream, as RESP2 (``[[key, entries]]``) or RESP3 (``{key: entries}``)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    return [(entry_id.decode(), dict(fields)) for entries in streams for entry_id, fields in entries]
