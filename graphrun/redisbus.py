"""``EventBus`` on Redis: what crosses processes in production mode.

Keys and channels, under a prefix (``graphrun`` by default):

- ``<prefix>:run:<run_id>``: a stream of the run's events, trimmed to about ``stream_max_events``. The SSE
  event ids are its entry ids, so a stream started on one API process can be resumed on another with
  ``Last-Event-ID``; like any stream id, one is unique within its stream only (two runs may both have
  an event ``<ms>-0``). Its last entry, a ``done`` marker, ends the subscriptions.
- ``<prefix>:run:<run_id>:output``: the run's output (JSON), written when it ends.
- ``<prefix>:thread:<thread_id>``: a stream of the thread's events (its runs' events, each run's end, its
  state updates), trimmed to about ``thread_log_events``. Its ids are its own: an event of a run has one
  id on the run's stream and another on the thread's.
- channels ``<prefix>:cancel``, ``<prefix>:new_run`` and ``<prefix>:done``: cancel signals, worker
  wake-ups and run ends, for every process. One listener task per bus receives them.

A finished run's keys go ``buffer_ttl_s`` after it ends, a thread's stream ``buffer_ttl_s`` after its last
write; a run that never ends (its thread was deleted before it ran) goes ``idle_run_ttl_s`` after its
last event, so that Redis never holds what nobody will read. (Writes push an expiry back only when it
was set a tenth of its TTL ago or more, so "after its last write" is within that tenth.)

Redis down: the control store holds the truth, so the bus degrades instead of failing. Writes are
logged and dropped, never raised into the runner or the worker; readers get idle ticks (``None``), on
which the API re-reads the run's row; everything resumes when Redis answers again. Cancel signals,
run ends and wake-ups are also delivered within the process, so one ``graphrun serve`` works on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import re
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from graphrun import encoding, metrics
from graphrun.errors import ConfigError
from graphrun.streams import CancelHandler, StreamEvent, wait_and_clear
from graphrun.types import Json

log = structlog.get_logger("graphrun.redisbus")

T = TypeVar("T")
V = TypeVar("V")

# Longest one Redis command may take, beyond a blocking read's own wait, before Redis counts as down.
op_timeout_s = 5.0
# After a failed write, writes are dropped without trying Redis for this long, doubling while it stays
# down: a Redis that does not answer must not hold every event of every run for op_timeout_s.
write_retry_first_s = 0.5
write_retry_max_s = 5.0
# Most entries one stream read returns.
read_batch_events = 500
# How long the listener waits for a message before looking again (s), and before it subscribes again
# after losing Redis.
listen_poll_s = 1.0
listen_retry_s = 1.0
# A stream's expiry is pushed back by a write only when this process last set it at least this fraction
# of its TTL ago: a run's events are then one XADD each, not an XADD and a PEXPIRE.
expiry_refresh_fraction = 0.1
# Most run outputs kept in process for ``output()``; each also stays only ``buffer_ttl_s``.
output_cache_runs = 10_000
# An output up to this size (encoded) travels in the run's end message, so that the process waiting for
# the run has it without reading it back; a larger one is read from its key.
inline_output_max = 16 * 1024

# What "Redis did not answer" looks like: its own errors, sockets, and our timeouts (TimeoutError).
_UNREACHABLE = (RedisError, OSError)
# The id of an event that was not recorded (Redis unreachable); also the position before every entry.
NO_ID = "0-0"
_DONE = b"done"
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")

_Entries = list[tuple[str, dict[bytes, bytes]]]


class _Unreachable(Exception):
    """Redis did not answer (already logged)."""


class _Writes:
    """Group commit of the bus's writes: the commands of every write made while a batch is on its way go
    together in the next one, one round trip, in the order they were made (so a run's events, and its end,
    stay in order). Under load this turns one round trip per event into one per batch: redis-py spends
    far more per pipeline than per command. Each writer still waits for its own replies, as if alone."""

    def __init__(self, bus: RedisBus) -> None:
        self._bus = bus
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
            pipe = self._bus._redis.pipeline(transaction=False)
            ends = []
            for commands, _ in batch:
                commands(pipe)
                ends.append(len(pipe.command_stack))
            replies = await self._bus._write("write", pipe)
            if replies is None:  # dropped: the expiries it would have set were not set
                self._bus._expiry_set.clear()
            start = 0
            for (_, reply), end in zip(batch, ends, strict=True):
                if not reply.done():  # its writer may have been cancelled meanwhile
                    reply.set_result(None if replies is None else replies[start:end])
                start = end

    async def drain(self, timeout_s: float) -> None:
        """Let what is queued go out (at most ``timeout_s``)."""
        if self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender], timeout=timeout_s)


class RedisBus:
    """``EventBus`` across processes. Use as ``async with RedisBus(...)``: it owns a listener task (cancel
    signals, wake-ups, run ends) and, when given a URL, its client."""

    def __init__(
        self,
        redis: Redis | str,
        *,
        prefix: str = "graphrun",
        buffer_ttl_s: float = 120.0,
        stream_max_events: int = 10_000,
        thread_log_events: int = 10_000,
        idle_run_ttl_s: float = 86_400.0,
        share_wakeups: bool = True,
    ) -> None:
        """``redis``: a URL, or a client made with ``decode_responses=False`` (events are bytes). A client
        made here has no socket timeout (blocking reads take as long as a tick); every command is bounded
        by ``op_timeout_s`` instead."""
        if isinstance(redis, str):
            self._redis = Redis.from_url(redis, socket_timeout=None, socket_connect_timeout=op_timeout_s)
            self._owns_client = True
        else:
            self._redis, self._owns_client = redis, False
        if self._redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigError("RedisBus needs a Redis client with decode_responses=False: events are bytes")
        socket_timeout = self._redis.connection_pool.connection_kwargs.get("socket_timeout")
        # A blocking read must return before the client's own socket timeout would cut it.
        self._max_block_s: float | None = socket_timeout / 2 if socket_timeout else None
        self._prefix = prefix
        self._buffer_ttl_s = buffer_ttl_s
        self._ttl_ms = _ms(buffer_ttl_s)
        self._idle_run_ttl_ms = _ms(idle_run_ttl_s)
        self._stream_max_events = stream_max_events
        self._thread_log_events = thread_log_events
        self._channels = {f"{prefix}:{kind}".encode(): kind for kind in ("cancel", "new_run", "done")}
        # False when something else wakes other processes' workers (PostgreSQL NOTIFY in production mode):
        # a second signal per run would only make idle workers claim twice.
        self._share_wakeups = share_wakeups
        self._sender = uuid.uuid4().hex  # tells this bus's own messages, already delivered here, from others'
        self._cancel_handlers: list[CancelHandler] = []
        self._new_run = asyncio.Event()
        self._done_waiters: dict[str, set[asyncio.Event]] = {}
        self._outputs: collections.OrderedDict[str, tuple[float, Json | None]] = collections.OrderedDict()
        self._listener: asyncio.Task[None] | None = None
        self._listen_tried = asyncio.Event()
        self._notifier: asyncio.Task[None] | None = None
        self._notify_again = False
        self._reachable = True
        self._writes_resume_at = 0.0
        self._write_retry_s = write_retry_first_s
        self._writes = _Writes(self)
        # When this process last set each stream's expiry (``_expire``); forgotten when a write is dropped.
        self._expiry_set: collections.OrderedDict[str, float] = collections.OrderedDict()
        # Runs whose end message this process received lately, waited for or not (their ids only): a
        # wait that starts just after a run ended knows to read its output instead of waiting.
        self._recently_done: collections.OrderedDict[str, tuple[float, None]] = collections.OrderedDict()
        self._subscribed = False  # the listener holds its subscription: no end message is missed

    async def __aenter__(self) -> RedisBus:
        self._listener = asyncio.create_task(self._listen(), name=f"redisbus:{self._prefix}:listen")
        # Wait for the first subscription attempt, not for its success: with Redis down the bus starts
        # degraded, and the listener keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listen_tried.wait(), op_timeout_s)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        # Queued writes and a wake-up still being published go out (bounded); the listener stops; our
        # client closes.
        await self._writes.drain(op_timeout_s)
        if self._notifier is not None:
            _, pending = await asyncio.wait([self._notifier], timeout=op_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._owns_client:
            await self._redis.aclose()

    # ------------------------------------------------------------ keys

    def _run_key(self, run_id: str) -> str:
        return f"{self._prefix}:run:{run_id}"

    def _output_key(self, run_id: str) -> str:
        return f"{self._prefix}:run:{run_id}:output"

    def _thread_key(self, thread_id: str) -> str:
        return f"{self._prefix}:thread:{thread_id}"

    def _channel(self, kind: str) -> str:
        return f"{self._prefix}:{kind}"

    # ------------------------------------------------------------ writing

    async def publish(
        self, run_id: str, event: str, data: Any, *, thread_id: str | None = None
    ) -> StreamEvent:
        """Append to the run's stream (and the thread's). The id is the run stream's; ``NO_ID`` when Redis
        was unreachable and the event was dropped."""
        body = encoding.dumps(data)
        key = self._run_key(run_id)

        def commands(pipe: Pipeline) -> None:
            pipe.xadd(key, {"event": event, "data": body}, maxlen=self._stream_max_events, approximate=True)
            self._expire(pipe, key, self._idle_run_ttl_ms)
            if thread_id is not None:
                self._append_thread(pipe, thread_id, event, body)

        result = await self._writes.write(commands)
        return StreamEvent(NO_ID if result is None else result[0].decode(), event, body)

    async def finish(self, run_id: str, output: Json | None, *, thread_id: str | None = None) -> None:
        """The run ended: its subscribers end, its waiters wake, its keys expire after ``buffer_ttl_s``."""
        self._remember(run_id, output)
        self._wake(run_id)
        key, output_key = self._run_key(run_id), self._output_key(run_id)
        body = encoding.dumps(output)
        inline = len(body) <= inline_output_max
        message = encoding.dumps({"from": self._sender, "run_id": run_id, "inline": inline})
        if inline:
            message += b"\n" + body

        def commands(pipe: Pipeline) -> None:
            # In this order on one connection: whoever sees the done marker finds the output.
            pipe.set(output_key, body, px=self._ttl_ms)
            pipe.xadd(key, {_DONE: b"1"}, maxlen=self._stream_max_events, approximate=True)
            pipe.pexpire(key, self._ttl_ms)
            self._expiry_set.pop(key, None)
            if thread_id is not None:
                done = encoding.dumps({"status": "run_done", "run_id": run_id})
                self._append_thread(pipe, thread_id, "metadata", done)
            pipe.publish(self._channel("done"), message)

        await self._writes.write(commands)

    async def publish_thread(self, thread_id: str, event: str, data: Any) -> StreamEvent:
        """An event of the thread itself (a state update), on its stream only; ``NO_ID`` when dropped."""
        body = encoding.dumps(data)
        result = await self._writes.write(lambda pipe: self._append_thread(pipe, thread_id, event, body))
        return StreamEvent(NO_ID if result is None else result[0].decode(), event, body)

    def _append_thread(self, pipe: Pipeline, thread_id: str, event: str, body: bytes) -> None:
        key = self._thread_key(thread_id)
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

    async def _write(self, op: str, pipe: Pipeline) -> list[Any] | None:
        """One pipeline; None when it was dropped because Redis is unreachable."""
        if time.monotonic() < self._writes_resume_at:
            return None
        try:
            return await self._call(op, pipe.execute)
        except _Unreachable:
            return None

    async def _call(self, op: str, call: Callable[[], Awaitable[T]], wait_s: float = 0.0) -> T:
        """``call()``, bounded by ``op_timeout_s`` beyond ``wait_s``; a failure is logged (once per outage)
        and raised as ``_Unreachable``."""
        try:
            async with asyncio.timeout(op_timeout_s + wait_s):
                result = await call()
        except _UNREACHABLE as exc:
            self._went_down(op, exc)
            raise _Unreachable from exc
        self._came_back()
        return result

    def _went_down(self, op: str, exc: BaseException) -> None:
        metrics.BUS_ERRORS.labels(op).inc()
        if self._reachable:
            log.warning("redis_unreachable", op=op, error=str(exc) or type(exc).__name__)
            self._reachable = False
        self._writes_resume_at = time.monotonic() + self._write_retry_s
        self._write_retry_s = min(self._write_retry_s * 2, write_retry_max_s)

    def _came_back(self) -> None:
        if not self._reachable:
            log.info("redis_reachable")
            self._reachable = True
        self._writes_resume_at, self._write_retry_s = 0.0, write_retry_first_s

    async def ping(self) -> bool:
        """Does Redis answer? (For ``/ready``.)"""
        try:
            await self._call("ping", self._redis.ping)
        except _Unreachable:
            return False
        return True

    async def report_breakers(self, reporter: str, states: dict[str, str], ttl_s: float) -> None:
        """A worker's circuit breakers and their states, kept for ``ttl_s`` (for every API's ``/ready``)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(f"{self._prefix}:breakers:{reporter}", encoding.dumps(states), px=int(ttl_s * 1000))
        await self._write("report_breakers", pipe)

    async def breakers(self) -> dict[str, dict[str, str]]:
        """Every live report: reporter -> breaker -> state (nothing while Redis is unreachable)."""
        prefix = f"{self._prefix}:breakers:"

        async def read() -> dict[str, dict[str, str]]:
            keys = [key async for key in self._redis.scan_iter(match=f"{prefix}*", count=100)]
            values = await self._redis.mget(keys) if keys else []
            found = {}
            for key, value in zip(keys, values, strict=True):
                if value is not None:
                    name = key.decode() if isinstance(key, bytes) else str(key)
                    found[name.removeprefix(prefix)] = encoding.loads(value)
            return found

        try:
            return await self._call("breakers", read)
        except _Unreachable:
            return {}

    # ------------------------------------------------------------ reading

    async def has_event(self, run_id: str, event_id: str) -> bool | None:
        """Is ``event_id`` one of the run's events? None when no one can tell: the run's stream does not
        exist (not started, or expired) or Redis is unreachable."""
        if not _STREAM_ID.fullmatch(event_id):
            return False
        key = self._run_key(run_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.exists(key)
        pipe.xrange(key, min=event_id, max=event_id, count=1)
        try:
            exists, found = await self._call("has_event", pipe.execute)
        except _Unreachable:
            return None
        return bool(found) if exists else None

    async def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Events after ``after`` until the run is done: all of them for ``-1``, only those published from
        now on for None (a plain join, as on the official server; an id not of this run likewise);
        ``None`` on idle ticks, and on every tick while Redis is unreachable."""
        key = self._run_key(run_id)
        loop = asyncio.get_running_loop()
        start: tuple[str, bool] | None = None
        while start is None:
            tick_end = loop.time() + tick_s
            try:
                start = await self._run_start(run_id, after)
            except _Unreachable:
                await asyncio.sleep(tick_end - loop.time())
                yield None
        position, finished = start
        while True:
            tick_end = loop.time() + tick_s
            try:
                # A finished run is read to its end without waiting.
                entries = await self._read(key, position, None if finished else tick_s)
            except _Unreachable:
                await asyncio.sleep(tick_end - loop.time())
                yield None
                continue
            if not entries:
                if finished:
                    return
                yield None
            for entry_id, fields in entries:
                position = entry_id
                if _DONE in fields:
                    return
                yield _event(entry_id, fields)

    async def _run_start(self, run_id: str, after: str | None) -> tuple[str, bool]:
        """Where a subscription starts, and whether the run has ended, read at one instant."""
        key = self._run_key(run_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.exists(self._output_key(run_id))
        pipe.xrevrange(key, count=1)
        known = after if after is not None and _STREAM_ID.fullmatch(after) else None
        if known is not None:
            pipe.xrange(key, min=known, max=known, count=1)
        finished, last, *found = await self._call("subscribe", pipe.execute)
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
        key = self._thread_key(thread_id)
        loop = asyncio.get_running_loop()
        position = after if after is not None and _STREAM_ID.fullmatch(after) else None
        if after == "-1":
            position = NO_ID
        while True:
            tick_end = loop.time() + tick_s
            try:
                if position is None:
                    last = await self._call(
                        "subscribe_thread", functools.partial(self._redis.xrevrange, key, count=1)
                    )
                    position = _last_id(last)
                entries = await self._read(key, position, tick_s)
            except _Unreachable:
                await asyncio.sleep(tick_end - loop.time())
                yield None
                continue
            if not entries:
                yield None
            for entry_id, fields in entries:
                position = entry_id
                yield _event(entry_id, fields)

    async def _read(self, key: str, position: str, wait_s: float | None) -> _Entries:
        """The entries after ``position``, waiting up to ``wait_s`` for one (None: not waiting)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait_s or 0.0)
        while True:
            block_s = None if wait_s is None else max(0.001, deadline - loop.time())
            if block_s is not None and self._max_block_s is not None:
                block_s = min(block_s, self._max_block_s)
            block_ms = None if block_s is None else _ms(block_s)
            read = functools.partial(
                self._redis.xread, {key: position}, count=read_batch_events, block=block_ms
            )
            reply = await self._call("read", read, block_s or 0.0)
            entries = _entries(reply)
            if entries or block_s is None or loop.time() >= deadline:
                return entries

    # ------------------------------------------------------------ completion

    async def wait_done(self, run_id: str, timeout_s: float) -> bool:
        """Whether the run ended (here or on any process) within ``timeout_s``; False while Redis is
        unreachable, unless it ended in this process."""
        woken = asyncio.Event()
        waiters = self._done_waiters.setdefault(run_id, set())
        waiters.add(woken)  # before looking, so that an end announced meanwhile is not missed
        try:
            if self._cached(run_id):
                return True
            # While subscribed, an end since the subscription began was heard (``_recently_done``); one
            # before it is in the run's row, which the caller reads when this times out.
            if (not self._subscribed or run_id in self._recently_done) and await self._fetch_output(run_id):
                return True
            try:
                await asyncio.wait_for(woken.wait(), timeout_s)
            except TimeoutError:
                return False
            if not self._cached(run_id):
                await self._fetch_output(run_id)  # if Redis fails now, the caller reads the run's row
            return True
        finally:
            waiters.discard(woken)
            if not waiters:
                self._done_waiters.pop(run_id, None)

    async def _fetch_output(self, run_id: str) -> bool:
        key = self._output_key(run_id)
        try:
            raw = await self._call("wait_done", lambda: self._redis.get(key))
        except _Unreachable:
            return False
        if raw is None:
            return False
        self._remember(run_id, encoding.loads(raw))
        return True

    def output(self, run_id: str) -> Json | None:
        """The output of a run this process saw end (``finish``, or ``wait_done`` returning True) within
        ``buffer_ttl_s``; None otherwise."""
        entry = self._outputs.get(run_id)
        if entry is None or time.monotonic() - entry[0] > self._buffer_ttl_s:
            return None
        return entry[1]

    def _cached(self, run_id: str) -> bool:
        entry = self._outputs.get(run_id)
        return entry is not None and time.monotonic() - entry[0] <= self._buffer_ttl_s

    def _remember(self, run_id: str, output: Json | None) -> None:
        self._keep(self._outputs, run_id, output)

    def _heard_done(self, run_id: str) -> None:
        self._keep(self._recently_done, run_id, None)

    def _keep(self, entries: collections.OrderedDict[str, tuple[float, V]], run_id: str, value: V) -> None:
        """Put ``run_id`` last in ``entries``, stamped now; drop the oldest beyond ``output_cache_runs``
        entries or ``buffer_ttl_s`` of age (runs end in clock order, so those are at the front)."""
        now = time.monotonic()
        entries[run_id] = (now, value)
        entries.move_to_end(run_id)
        while entries:
            oldest_at = next(iter(entries.values()))[0]
            if len(entries) <= output_cache_runs and now - oldest_at <= self._buffer_ttl_s:
                break
            entries.popitem(last=False)

    def _wake(self, run_id: str) -> None:
        for waiter in self._done_waiters.get(run_id, ()):
            waiter.set()

    # ------------------------------------------------------------ wake-ups and cancel signals

    def notify_new_run(self) -> None:
        """Wake the idle workers of this process now, and of every process through Redis (in the
        background: publishes are coalesced, one always following the last call)."""
        self._new_run.set()
        if not self._share_wakeups:
            return
        if self._notifier is not None and not self._notifier.done():
            self._notify_again = True
            return
        self._notifier = asyncio.create_task(self._publish_new_run(), name=f"redisbus:{self._prefix}:notify")

    async def _publish_new_run(self) -> None:
        self._notify_again = True
        while self._notify_again:
            self._notify_again = False
            pipe = self._redis.pipeline(transaction=False)
            pipe.publish(self._channel("new_run"), encoding.dumps({"from": self._sender}))
            await self._write("notify_new_run", pipe)

    async def wait_new_run(self, timeout_s: float) -> None:
        await wait_and_clear(self._new_run, timeout_s)

    async def cancel(self, run_id: str, action: str) -> None:
        """Call the cancel handlers of every process: this one's directly, the others' through Redis
        (tried even while writes are being dropped: a cancel is rare and worth the wait)."""
        message = encoding.dumps({"from": self._sender, "run_id": run_id, "action": action})
        with contextlib.suppress(_Unreachable):
            await self._call("cancel", lambda: self._redis.publish(self._channel("cancel"), message))
        await self._run_cancel_handlers(run_id, action)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)

    async def _run_cancel_handlers(self, run_id: str, action: str) -> None:
        for handler in self._cancel_handlers:
            try:
                await handler(run_id, action)
            except Exception:
                log.exception("cancel_handler_failed", run_id=run_id, action=action)

    async def _listen(self) -> None:
        """Receive the channels until cancelled, subscribing again whenever Redis comes back."""
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await self._call("listen", functools.partial(pubsub.subscribe, *self._channels))
                self._subscribed = True
                self._listen_tried.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=listen_poll_s)
                    if message is not None:
                        await self._dispatch(message)
            except (_Unreachable, *_UNREACHABLE) as exc:
                if not isinstance(exc, _Unreachable):
                    self._went_down("listen", exc)
                self._listen_tried.set()
            finally:
                self._subscribed = False
                with contextlib.suppress(*_UNREACHABLE):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await asyncio.sleep(listen_retry_s)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = self._channels.get(message["channel"])
        # An end message is its header, then (when the output is small) a newline and the output.
        header, _, output = bytes(message["data"]).partition(b"\n")
        try:
            body = encoding.loads(header)
            sender, run_id, action = body.get("from"), body.get("run_id"), body.get("action")
        except (ValueError, AttributeError) as exc:  # not JSON, or not an object: not from a RedisBus
            log.warning("redis_message_invalid", channel=message["channel"], error=str(exc))
            return
        if sender == self._sender:
            return  # sent by this bus, which delivered it here already
        if kind == "new_run":
            self._new_run.set()
        elif kind == "done" and isinstance(run_id, str):
            self._heard_done(run_id)
            if body.get("inline") and run_id in self._done_waiters:
                self._remember(run_id, encoding.loads(output))
            self._wake(run_id)
        elif kind == "cancel" and isinstance(run_id, str) and isinstance(action, str):
            await self._run_cancel_handlers(run_id, action)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _event(entry_id: str, fields: dict[bytes, bytes]) -> StreamEvent:
    return StreamEvent(entry_id, fields[b"event"].decode(), fields[b"data"])


def _last_id(reply: Any) -> str:
    """The id in XREVRANGE's reply for ``COUNT 1``; ``NO_ID`` for an empty (or missing) stream."""
    return str(reply[0][0].decode()) if reply else NO_ID


def _entries(reply: Any) -> _Entries:
    """XREAD's reply for one stream, as RESP2 (``[[key, entries]]``) or RESP3 (``{key: entries}``)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    return [(entry_id.decode(), dict(fields)) for entries in streams for entry_id, fields in entries]
