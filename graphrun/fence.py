"""Fencing a run's checkpoint writes by its lease: a worker that lost its lease writes nothing more.

A worker holds a run under a lease it renews every heartbeat; the store refuses the run's final write
from an attempt that is no longer the run's (the attempt is the fencing token). The checkpoints a run
writes go to the checkpointer, not the store: a worker paused past its lease (SIGSTOP, a VM frozen, a
long GC) and resumed would write the steps it had in flight on top of the attempt that took the run over,
until its next heartbeat told it. So the saver asks the run's ``Lease`` before each write: while the last
renewal is fresh (younger than the lease less one heartbeat) that costs nothing; past it, the lease is
renewed first, and a lost one raises ``LeaseLost`` instead of writing.

The lease travels in a context variable set in the run's task (LangGraph's tasks inherit it); the
PostgreSQL and Redis savers check it (``savers.FencedWrites``; the SQLite, MongoDB and in-memory ones do not).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar


class Lease:
    """The lease of one attempt of a run, as this worker last renewed it."""

    def __init__(self, renew: Callable[[], Awaitable[object]], lease_s: float, margin_s: float) -> None:
        self._renew = renew  # raises LeaseLost when the attempt no longer holds the run
        self._fresh_s = max(0.0, lease_s - margin_s)
        self._fresh_until = time.monotonic() + self._fresh_s

    def renewed(self, started_at: float) -> None:
        """A renewal sent at ``started_at`` (``time.monotonic()``) succeeded."""
        self._fresh_until = max(self._fresh_until, started_at + self._fresh_s)

    async def check(self) -> None:
        """Return when the lease is surely still held; raise ``LeaseLost`` when it is not."""
        if time.monotonic() < self._fresh_until:
            return
        started = time.monotonic()
        await self._renew()
        self.renewed(started)


_current: ContextVar[Lease | None] = ContextVar("graphrun_lease", default=None)


def hold(lease: Lease) -> None:
    """The lease of the run the current task executes."""
    _current.set(lease)


async def check() -> None:
    """Before a checkpoint write: refuse it (``LeaseLost``) when the running attempt lost its lease."""
    lease = _current.get()
    if lease is not None:
        await lease.check()
