"""The event bus between the runner and the API: run events, run completion, wake-ups and cancel signals.

Embedded mode keeps all of it in process (``LocalBus``). Each run's events are buffered, so that a client
that connects late, or reconnects with ``Last-Event-ID``, receives what it missed; a finished run's buffer
is dropped ``stream_buffer_ttl_s`` after the run ends.

A thread's stream (``GET /threads/{id}/stream``) is the events of every run on the thread, each run's end
(a ``metadata`` event ``{"status": "run_done"}``) and the thread's state updates, in publish order. Its
log keeps at most ``thread_log_events`` events and goes when no one has watched or written it for
``stream_buffer_ttl_s`` (it is looked at again at most that much later).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from graphrun import encoding
from graphrun.types import Json

CancelHandler = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class StreamEvent:
    """One SSE event: ``id`` looks like a Redis stream id (``<ms>-<seq>``) and grows within a run."""

    id: str
    event: str
    data: bytes


@dataclass
class _RunBuffer:
    events: list[StreamEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    output: Json | None = None
    finished_at: float | None = None
    watchers: int = 0


@dataclass
class _ThreadLog:
    events: collections.deque[StreamEvent]
    dropped: int = 0  # events trimmed from the front: positions stay absolute
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    touched_at: float = 0.0
    watchers: int = 0
    gone: bool = False  # dropped: its followers end


class EventBus(Protocol):
    async def publish(
        self, run_id: str, event: str, data: Any, *, thread_id: str | None = None
    ) -> StreamEvent: ...
    async def finish(self, run_id: str, output: Json | None, *, thread_id: str | None = None) -> None: ...
    def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]: ...
    async def has_event(self, run_id: str, event_id: str) -> bool | None: ...
    async def publish_thread(self, thread_id: str, event: str, data: Any) -> StreamEvent: ...
    async def drop_thread(self, thread_id: str) -> None:
        """Forget the thread's log, and end its followers: the thread is gone, and its id may be taken
        again, by another owner, who must not see what it held."""
        ...

    def subscribe_thread(
        self, thread_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]: ...
    async def wait_done(self, run_id: str, timeout_s: float) -> bool: ...
    def output(self, run_id: str) -> Json | None: ...
    def notify_new_run(self) -> None: ...
    async def wait_new_run(self, timeout_s: float) -> None: ...
    async def cancel(self, run_id: str, action: str) -> None: ...
    def on_cancel(self, handler: CancelHandler) -> None: ...
    async def ping(self) -> bool: ...
    async def report_breakers(self, reporter: str, states: dict[str, str], ttl_s: float) -> None: ...
    async def breakers(self) -> dict[str, dict[str, str]]: ...


class LocalBus:
    """``EventBus`` within one process."""

    def __init__(
        self,
        buffer_ttl_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        thread_log_events: int = 10_000,
    ) -> None:
        self._runs: dict[str, _RunBuffer] = {}
        self._threads: dict[str, _ThreadLog] = {}
        self._thread_touches: collections.deque[tuple[float, str]] = collections.deque()
        self._thread_log_events = thread_log_events
        self._finished: collections.deque[tuple[float, str]] = collections.deque()  # in finish order
        self._seq = itertools.count()
        self._new_run = asyncio.Event()
        self._cancel_handlers: list[CancelHandler] = []
        self._buffer_ttl_s = buffer_ttl_s
        self._clock = clock
        self._breakers: dict[str, tuple[float, dict[str, str]]] = {}

    @property
    def buffered_runs(self) -> int:
        """How many runs' events are held in memory now."""
        self._expire()
        return len(self._runs)

    def _buffer(self, run_id: str) -> _RunBuffer:
        self._expire()
        buf = self._runs.get(run_id)
        if buf is None:
            buf = self._runs[run_id] = _RunBuffer()
        return buf

    def _expire(self) -> None:
        # Runs finish in clock order, so the expired ones are at the front: O(1) per call, amortized.
        cutoff = self._clock() - self._buffer_ttl_s
        while self._finished and self._finished[0][0] < cutoff:
            _, run_id = self._finished.popleft()
            buf = self._runs.get(run_id)
            if buf is not None and buf.finished_at is not None and buf.finished_at < cutoff:
                del self._runs[run_id]
        # Thread logs are queued once, when made; one found written or watched since is queued again
        # rather than on every event, so the queue holds one entry per live log.
        now = self._clock()
        while self._thread_touches and self._thread_touches[0][0] < cutoff:
            _, thread_id = self._thread_touches.popleft()
            log = self._threads.get(thread_id)
            if log is None:
                continue
            if not log.watchers and log.touched_at < cutoff:
                del self._threads[thread_id]
            else:
                self._thread_touches.append((now, thread_id))

    def _thread_log(self, thread_id: str) -> _ThreadLog:
        log = self._threads.get(thread_id)
        if log is None:
            log = self._threads[thread_id] = _ThreadLog(collections.deque())
            self._thread_touches.append((self._clock(), thread_id))
        log.touched_at = self._clock()
        return log

    def _append_thread(self, thread_id: str, item: StreamEvent) -> None:
        log = self._thread_log(thread_id)
        log.events.append(item)
        if len(log.events) > self._thread_log_events:
            log.events.popleft()
            log.dropped += 1
        log.changed.set()

    def _next_id(self) -> str:
        return f"{int(time.time() * 1000)}-{next(self._seq)}"

    async def publish(
        self, run_id: str, event: str, data: Any, *, thread_id: str | None = None
    ) -> StreamEvent:
        buf = self._buffer(run_id)
        item = StreamEvent(self._next_id(), event, encoding.dumps(data))
        buf.events.append(item)
        buf.changed.set()
        if thread_id is not None:
            self._append_thread(thread_id, item)
        return item

    async def finish(self, run_id: str, output: Json | None, *, thread_id: str | None = None) -> None:
        buf = self._buffer(run_id)
        buf.done, buf.output, buf.finished_at = True, output, self._clock()
        self._finished.append((buf.finished_at, run_id))
        buf.changed.set()
        if thread_id is not None:
            await self.publish_thread(thread_id, "metadata", {"status": "run_done", "run_id": run_id})

    async def publish_thread(self, thread_id: str, event: str, data: Any) -> StreamEvent:
        """An event of the thread itself (a run's end, a state update), on its stream only."""
        self._expire()
        item = StreamEvent(self._next_id(), event, encoding.dumps(data))
        self._append_thread(thread_id, item)
        return item

    async def drop_thread(self, thread_id: str) -> None:
        log = self._threads.pop(thread_id, None)
        if log is not None:
            log.gone = True
            log.changed.set()

    async def has_event(self, run_id: str, event_id: str) -> bool | None:
        """Is ``event_id`` one of the run's events? None when this process cannot tell: it holds none of
        the run's events (not started, expired, or published by another process)."""
        self._expire()
        buf = self._runs.get(run_id)
        if buf is None or not buf.events:
            return None
        return any(e.id == event_id for e in buf.events)

    def subscribe_thread(
        self, thread_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """The thread's events from now on (after ``after``, when given, as far as the log reaches back);
        ``None`` on idle ticks. It never ends by itself: the caller closes it. "Now" is this call, not
        the first iteration: nothing published in between is missed."""
        self._expire()
        log = self._thread_log(thread_id)
        if after is None:
            position = log.dropped + len(log.events)
        elif after == "-1":
            position = log.dropped
        else:
            key = _id_key(after)
            position = log.dropped + sum(1 for e in log.events if _id_key(e.id) <= key)
        return self._follow_thread(thread_id, log, position, tick_s)

    async def _follow_thread(
        self, thread_id: str, log: _ThreadLog, position: int, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        if log.gone:
            return
        if thread_id not in self._threads:  # it expired since the subscription began: it lives again
            self._threads[thread_id] = log
            self._thread_touches.append((self._clock(), thread_id))
        log.watchers += 1
        try:
            while True:
                while position < log.dropped + len(log.events):
                    index = max(position, log.dropped) - log.dropped
                    position = log.dropped + index + 1
                    yield log.events[index]
                if log.gone:
                    return
                log.changed.clear()
                try:
                    await asyncio.wait_for(log.changed.wait(), tick_s)
                except TimeoutError:
                    yield None
        finally:
            log.watchers -= 1
            log.touched_at = self._clock()

    async def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Events after ``after`` until the run is done: all of them for ``-1``, only those published
        from now on for None (a plain join, as on the official server); ``None`` on idle ticks."""
        with self._watching(run_id) as buf:
            if after is None:
                position = len(buf.events)
            elif after == "-1":
                position = 0
            else:
                position = _position_after(buf.events, after)
            while True:
                while position < len(buf.events):
                    position += 1
                    yield buf.events[position - 1]
                if buf.done:
                    return
                buf.changed.clear()
                try:
                    await asyncio.wait_for(buf.changed.wait(), tick_s)
                except TimeoutError:
                    yield None

    async def wait_done(self, run_id: str, timeout_s: float) -> bool:
        with self._watching(run_id) as buf:
            deadline = self._clock() + timeout_s
            while not buf.done:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                buf.changed.clear()
                try:
                    await asyncio.wait_for(buf.changed.wait(), remaining)
                except TimeoutError:
                    return buf.done
            return True

    @contextlib.contextmanager
    def _watching(self, run_id: str) -> Iterator[_RunBuffer]:
        """A buffer someone waits on. One made only for waiting (a run of another process, or one whose
        buffer expired) is dropped when its last watcher leaves, so waiting never leaks memory."""
        buf = self._buffer(run_id)
        buf.watchers += 1
        try:
            yield buf
        finally:
            buf.watchers -= 1
            if not buf.watchers and not buf.done and not buf.events and self._runs.get(run_id) is buf:
                del self._runs[run_id]

    def output(self, run_id: str) -> Json | None:
        self._expire()
        buf = self._runs.get(run_id)
        return buf.output if buf is not None and buf.done else None

    def notify_new_run(self) -> None:
        self._new_run.set()

    async def wait_new_run(self, timeout_s: float) -> None:
        await wait_and_clear(self._new_run, timeout_s)

    async def cancel(self, run_id: str, action: str) -> None:
        for handler in self._cancel_handlers:
            await handler(run_id, action)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)

    async def ping(self) -> bool:
        return True  # in process: always there

    async def report_breakers(self, reporter: str, states: dict[str, str], ttl_s: float) -> None:
        """A worker's circuit breakers and their states, kept for ``ttl_s`` (for ``/ready``)."""
        self._breakers[reporter] = (self._clock() + ttl_s, dict(states))

    async def breakers(self) -> dict[str, dict[str, str]]:
        """Every live report: reporter -> breaker -> state."""
        now = self._clock()
        for reporter, (until, _) in list(self._breakers.items()):
            if until <= now:
                del self._breakers[reporter]
        return {reporter: states for reporter, (_, states) in self._breakers.items()}


async def wait_and_clear(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until ``event`` is set or ``timeout_s`` passes, then clear it: a wake-up is consumed once."""
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        return
    finally:
        event.clear()


def _id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def _position_after(events: list[StreamEvent], after: str | None) -> int:
    for i, e in enumerate(events):
        if e.id == after:
            return i + 1
    # An id we never issued for this run: replay nothing old, follow from now on.
    return len(events)
