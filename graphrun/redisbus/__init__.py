"""``EventBus`` on Redis: what crosses processes in production mode.

Keys and channels, under a prefix (``graphrun`` by default):

- ``<prefix>:run:<run_id>``: a stream of the run's events, trimmed to about ``stream_max_events``. The SSE
  event ids are its entry ids, so a stream started on one API process can be resumed on another with
  ``Last-Event-ID``; like any stream id, one is unique within its stream only (two runs may both have
  an event ``<ms>-0``). Its last entry, a ``done`` marker, ends the subscriptions.
- ``<prefix>:run:<run_id>:output``: the run's output (JSON), written when it ends.
- ``<prefix>:thread:<thread_id>``: a stream of the thread's events (its runs' events, each run's end, its
  state updates), trimmed to about ``thread_log_events``. Its ids are its own: an event of a run has one
  id on the run's stream and another on the thread's. When the thread is deleted it is replaced by one
  ``__dropped__`` marker, which ends its followers in every process (those that began before it).
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

The bus is its parts, each over the one ``Link`` (``_link.py``: client, keys, what follows when Redis
does not answer): ``publishing`` (events and ends, as a group commit), ``subscriptions`` (reading run and
thread streams), ``waiters`` (waiting for a run's end, and its output), ``signals`` (cancels, wake-ups,
and the listener of every channel). ``RedisBus`` puts them together behind ``EventBus``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any

from redis.asyncio import Redis

from graphrun import encoding
from graphrun.redisbus._link import NO_ID, Link, Unreachable, op_timeout_s
from graphrun.redisbus.publishing import Publisher
from graphrun.redisbus.signals import Signals
from graphrun.redisbus.subscriptions import Subscriptions
from graphrun.redisbus.waiters import Waiters
from graphrun.streams import CancelHandler, StreamEvent
from graphrun.types import Json

__all__ = ["NO_ID", "RedisBus"]


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
        by ``op_timeout_s`` instead. ``share_wakeups``: False when something else wakes other processes'
        workers (PostgreSQL NOTIFY in production mode)."""
        self._link = Link(redis, prefix)
        self._publisher = Publisher(
            self._link,
            buffer_ttl_s=buffer_ttl_s,
            stream_max_events=stream_max_events,
            thread_log_events=thread_log_events,
            idle_run_ttl_s=idle_run_ttl_s,
        )
        self._subscriptions = Subscriptions(self._link)
        self._waiters = Waiters(self._link, buffer_ttl_s)
        self._signals = Signals(self._link, self._waiters, share_wakeups=share_wakeups)

    async def __aenter__(self) -> RedisBus:
        await self._signals.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        # Queued writes and a wake-up still being published go out (bounded); the listener stops; our
        # client closes.
        await self._publisher.writes.drain(op_timeout_s)
        await self._signals.stop()
        await self._link.aclose()

    # ------------------------------------------------------------ writing (publishing.py)

    async def publish(
        self, run_id: str, event: str, data: Any, *, thread_id: str | None = None
    ) -> StreamEvent:
        """Append to the run's stream (and the thread's). The id is the run stream's; ``NO_ID`` when Redis
        was unreachable and the event was dropped."""
        return await self._publisher.publish(run_id, event, data, thread_id=thread_id)

    async def finish(self, run_id: str, output: Json | None, *, thread_id: str | None = None) -> None:
        """The run ended: its subscribers end, its waiters wake, its keys expire after ``buffer_ttl_s``."""
        self._waiters.remember(run_id, output)
        self._waiters.wake(run_id)
        await self._publisher.finish(run_id, output, thread_id=thread_id)

    async def publish_thread(self, thread_id: str, event: str, data: Any) -> StreamEvent:
        """An event of the thread itself (a state update), on its stream only; ``NO_ID`` when dropped."""
        return await self._publisher.publish_thread(thread_id, event, data)

    async def drop_thread(self, thread_id: str) -> None:
        """Forget the thread's stream; its followers end (see ``Publisher.drop_thread``)."""
        await self._publisher.drop_thread(thread_id)

    # ------------------------------------------------------------ reading (subscriptions.py)

    async def has_event(self, run_id: str, event_id: str) -> bool | None:
        """Is ``event_id`` one of the run's events? None when no one can tell: the run's stream does not
        exist (not started, or expired) or Redis is unreachable."""
        return await self._subscriptions.has_event(run_id, event_id)

    def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Events after ``after`` until the run is done (see ``Subscriptions.subscribe``)."""
        return self._subscriptions.subscribe(run_id, after, tick_s)

    def subscribe_thread(
        self, thread_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """The thread's events from now on (see ``Subscriptions.subscribe_thread``)."""
        return self._subscriptions.subscribe_thread(thread_id, after, tick_s)

    # ------------------------------------------------------------ completion (waiters.py)

    async def wait_done(self, run_id: str, timeout_s: float) -> bool:
        """Whether the run ended (here or on any process) within ``timeout_s``; False while Redis is
        unreachable, unless it ended in this process."""
        return await self._waiters.wait_done(run_id, timeout_s)

    def output(self, run_id: str) -> Json | None:
        """The output of a run this process saw end within ``buffer_ttl_s``; None otherwise."""
        return self._waiters.output(run_id)

    # ------------------------------------------------------------ wake-ups and cancels (signals.py)

    def notify_new_run(self) -> None:
        """Wake the idle workers of this process now, and of every process through Redis."""
        self._signals.notify_new_run()

    async def wait_new_run(self, timeout_s: float) -> None:
        await self._signals.wait_new_run(timeout_s)

    async def cancel(self, run_id: str, action: str) -> None:
        """Call the cancel handlers of every process: this one's directly, the others' through Redis."""
        await self._signals.cancel(run_id, action)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._signals.on_cancel(handler)

    # ------------------------------------------------------------ health

    async def ping(self) -> bool:
        """Does Redis answer? (For ``/ready``.)"""
        return await self._link.ping()

    async def report_breakers(self, reporter: str, states: dict[str, str], ttl_s: float) -> None:
        """A worker's circuit breakers and their states, kept for ``ttl_s`` (for every API's ``/ready``)."""
        pipe = self._link.redis.pipeline(transaction=False)
        pipe.set(self._link.keys.breakers(reporter), encoding.dumps(states), px=int(ttl_s * 1000))
        await self._link.write("report_breakers", pipe)

    async def breakers(self) -> dict[str, dict[str, str]]:
        """Every live report: reporter -> breaker -> state (nothing while Redis is unreachable)."""
        prefix = self._link.keys.breakers()

        async def read() -> dict[str, dict[str, str]]:
            keys = [key async for key in self._link.redis.scan_iter(match=f"{prefix}*", count=100)]
            values = await self._link.redis.mget(keys) if keys else []
            found = {}
            for key, value in zip(keys, values, strict=True):
                if value is not None:
                    name = key.decode() if isinstance(key, bytes) else str(key)
                    found[name.removeprefix(prefix)] = encoding.loads(value)
            return found

        try:
            return await self._link.call("breakers", read)
        except Unreachable:
            return {}
