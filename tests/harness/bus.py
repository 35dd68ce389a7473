"""Reading an event bus in tests (``LocalBus`` or ``RedisBus``): every wait bounded by ``BOUND_S``, so that
a regression fails instead of hanging; and a Redis key prefix of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from graphrun import encoding
from graphrun.streams import EventBus, StreamEvent
from tests.harness.waiting import Patience

REDIS_URI = os.environ.get("GRAPHRUN_TEST_REDIS_URI", "redis://127.0.0.1:6379/15")
TICK_S = 0.05
BOUND_S = 10.0
BOUNDED = Patience(timeout_s=BOUND_S, interval_s=0.05)

Subscription = AsyncIterator[StreamEvent | None]


async def drain(sub: Subscription) -> list[StreamEvent]:
    """Every event until the subscription ends, idle ticks left out."""
    async with asyncio.timeout(BOUND_S):
        return [e async for e in sub if e is not None]


async def until_idle(sub: Subscription) -> list[StreamEvent]:
    """The events a subscription yields before its first idle tick."""
    found: list[StreamEvent] = []
    async with asyncio.timeout(BOUND_S):
        async for e in sub:
            if e is None:
                return found
            found.append(e)
    return found


async def next_events(sub: Subscription, count: int) -> list[StreamEvent]:
    found: list[StreamEvent] = []
    async with asyncio.timeout(BOUND_S):
        async for e in sub:
            if e is not None:
                found.append(e)
            if len(found) == count:
                return found
    raise AssertionError(f"the subscription ended after {len(found)} of {count} events")


async def ticks(sub: Subscription, count: int) -> list[StreamEvent | None]:
    async with asyncio.timeout(BOUND_S):
        return [await anext(sub) for _ in range(count)]


async def close(sub: Subscription) -> None:
    assert isinstance(sub, AsyncGenerator)
    await sub.aclose()


async def published(bus: EventBus, run_id: str, count: int) -> list[StreamEvent]:
    return [await bus.publish(run_id, "values", {"step": i}) for i in range(count)]


def id_key(event: StreamEvent) -> tuple[int, int]:
    ms, seq = event.id.split("-")
    return int(ms), int(seq)


def payloads(events: list[StreamEvent]) -> list[tuple[str, Any]]:
    return [(e.event, encoding.loads(e.data)) for e in events]


class Recorder:
    """A cancel handler that remembers its calls and lets a test wait for one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    async def __call__(self, run_id: str, action: str) -> None:
        self.calls.append((run_id, action))
        self._changed.set()

    async def wait_for(self, run_id: str) -> None:
        async with asyncio.timeout(BOUND_S):
            while run_id not in [r for r, _ in self.calls]:
                self._changed.clear()
                await self._changed.wait()


async def assert_not_woken(bus: EventBus, why: str) -> None:
    """A new ``wait_new_run`` on ``bus`` is still waiting a tick later (it is cancelled then)."""
    waiter = asyncio.create_task(bus.wait_new_run(timeout_s=3600), name="waiter")
    done, _ = await asyncio.wait([waiter], timeout=TICK_S)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    assert not done, why


async def reachable_redis() -> str:
    """The test Redis's URI; fails the test, saying how to provide one, when it does not answer."""
    client = Redis.from_url(REDIS_URI, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(
            f"Redis is unreachable at {REDIS_URI} ({exc}). These tests need a real Redis: start one "
            "(scripts/services finds or starts one) or point GRAPHRUN_TEST_REDIS_URI at one.",
            pytrace=False,
        )
    finally:
        await client.aclose()
    return REDIS_URI


@contextlib.asynccontextmanager
async def key_prefix(raw: Redis) -> AsyncIterator[str]:
    """A key prefix of the test's own; its keys are deleted afterwards."""
    name = f"graphrun-test-{uuid.uuid4().hex[:12]}"
    yield name
    keys = [key async for key in raw.scan_iter(match=f"{name}:*")]
    if keys:
        await raw.delete(*keys)
