"""The event bus between the runner and the API: run events, run completion, wake-ups and cancel signals.

Embedded mode keeps all of it in process (``LocalBus``). Each run's events are buffered, so that a client
that connects late, or reconnects with ``Last-Event-ID``, receives what it missed; a finished run's buffer
is dropped ``stream_buffer_ttl_s`` after the run ends.
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


class EventBus(Protocol):
    async def publish(self, run_id: str, event: str, data: Any) -> StreamEvent: ...
    async def finish(self, run_id: str, output: Json | None) -> None: ...
    def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]: ...
    async def wait_done(self, run_id: str, timeout_s: float) -> bool: ...
    def output(self, run_id: str) -> Json | None: ...
    def notify_new_run(self) -> None: ...
    async def wait_new_run(self, timeout_s: float) -> None: ...
    async def cancel(self, run_id: str, action: str) -> None: ...
    def on_cancel(self, handler: CancelHandler) -> None: ...


class LocalBus:
    """``EventBus`` within one process."""

    def __init__(self, buffer_ttl_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._runs: dict[str, _RunBuffer] = {}
        self._finished: collections.deque[tuple[float, str]] = collections.deque()  # in finish order
        self._seq = itertools.count()
        self._new_run = asyncio.Event()
        self._cancel_handlers: list[CancelHandler] = []
        self._buffer_ttl_s = buffer_ttl_s
        self._clock = clock

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

    def _next_id(self) -> str:
        return f"{int(time.time() * 1000)}-{next(self._seq)}"

    async def publish(self, run_id: str, event: str, data: Any) -> StreamEvent:
        buf = self._buffer(run_id)
        item = StreamEvent(self._next_id(), event, encoding.dumps(data))
        buf.events.append(item)
        buf.changed.set()
        return item

    async def finish(self, run_id: str, output: Json | None) -> None:
        buf = self._buffer(run_id)
        buf.done, buf.output, buf.finished_at = True, output, self._clock()
        self._finished.append((buf.finished_at, run_id))
        buf.changed.set()

    async def subscribe(
        self, run_id: str, after: str | None, tick_s: float
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """Events after ``after`` (all if None or ``-1``) until the run is done; ``None`` on idle ticks."""
        with self._watching(run_id) as buf:
            position = 0 if after in (None, "-1") else _position_after(buf.events, after)
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
        try:
            await asyncio.wait_for(self._new_run.wait(), timeout_s)
        except TimeoutError:
            return
        finally:
            self._new_run.clear()

    async def cancel(self, run_id: str, action: str) -> None:
        for handler in self._cancel_handlers:
            await handler(run_id, action)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)


def _position_after(events: list[StreamEvent], after: str | None) -> int:
    for i, e in enumerate(events):
        if e.id == after:
            return i + 1
    # An id we never issued for this run: replay nothing old, follow from now on.
    return len(events)
