"""Waiting for runs to end, and their outputs: ``wait_done`` wakes on a run's end in any process (its end
message, heard by the listener) and ``output`` answers from what this process saw end.

A run's end message carries its output when it is small, so the process waiting for it does not read it
back; one that heard an end just before it began to wait reads the output key. Outputs and ends heard
are kept ``buffer_ttl_s`` at most (and ``output_cache_runs`` runs).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TypeVar

from graphrun import encoding
from graphrun.redisbus._link import Link, Unreachable, output_cache_runs
from graphrun.types import Json

V = TypeVar("V")


class Waiters:
    """Runs' ends as this process knows them, and who waits for which."""

    def __init__(self, link: Link, buffer_ttl_s: float) -> None:
        self._link = link
        self._buffer_ttl_s = buffer_ttl_s
        self._done_waiters: dict[str, set[asyncio.Event]] = {}
        self._outputs: collections.OrderedDict[str, tuple[float, Json | None]] = collections.OrderedDict()
        # Runs whose end message this process received lately, waited for or not (their ids only): a
        # wait that starts just after a run ended knows to read its output instead of waiting.
        self._recently_done: collections.OrderedDict[str, tuple[float, None]] = collections.OrderedDict()
        # Set by the listener while it holds its subscription: no end message is missed.
        self.subscribed = False

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
            if (not self.subscribed or run_id in self._recently_done) and await self._fetch_output(run_id):
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
        key = self._link.keys.output(run_id)
        try:
            raw = await self._link.call("wait_done", lambda: self._link.redis.get(key))
        except Unreachable:
            return False
        if raw is None:
            return False
        self.remember(run_id, encoding.loads(raw))
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

    def remember(self, run_id: str, output: Json | None) -> None:
        """The run ended with ``output``: kept for ``output()`` (its waiters are not woken here)."""
        self._keep(self._outputs, run_id, output)

    def heard_done(self, run_id: str, inline_output: bytes | None) -> None:
        """Another process said the run ended (with its encoded output, when it was small enough to come
        along): remembered, and its waiters here woken."""
        self._keep(self._recently_done, run_id, None)
        if inline_output is not None and run_id in self._done_waiters:
            self.remember(run_id, encoding.loads(inline_output))
        self.wake(run_id)

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

    def wake(self, run_id: str) -> None:
        for waiter in self._done_waiters.get(run_id, ()):
            waiter.set()
