"""``eventually``: poll until a condition holds. The deadline only bounds a test that would otherwise hang
(no test asserts on time), so it is generous; ``PROCESSES`` is the patience that processes on a busy
machine need."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypedDict, TypeVar

T = TypeVar("T")


class Patience(TypedDict):
    """How long ``eventually`` waits (s) and how often it looks (s); pass as ``**PROCESSES``."""

    timeout_s: float
    interval_s: float


PROCESSES = Patience(timeout_s=60.0, interval_s=0.2)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout_s: float = 20.0,
    interval_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until ``done(result)``; fail with the last result after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {result!r}")
        await asyncio.sleep(interval_s)
