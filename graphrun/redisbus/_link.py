"""The bus's link to Redis, which every part of it shares: the client, the key layout, the bus's sender
id, and what "Redis did not answer" looks like and what follows (logged once per outage, writes backed
off)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from graphrun import metrics
from graphrun.errors import ConfigError

log = structlog.get_logger("graphrun.redisbus")

T = TypeVar("T")

# Longest one Redis command may take, beyond a blocking read's own wait, before Redis counts as down.
op_timeout_s = 5.0
# After a failed write, writes are dropped without trying Redis for this long, doubling while it stays
# down: a Redis that does not answer must not hold every event of every run for op_timeout_s.
write_retry_first_s = 0.5
write_retry_max_s = 5.0
# Most runs a process remembers anything of: outputs kept for ``output()``, ends heard, expiries set.
output_cache_runs = 10_000

# What "Redis did not answer" looks like: its own errors, sockets, and our timeouts (TimeoutError).
UNREACHABLE = (RedisError, OSError)
# The id of an event that was not recorded (Redis unreachable); also the position before every entry.
NO_ID = "0-0"
# The field of a run stream's last entry: the run is done.
DONE = b"done"
DROPPED = "__dropped__"  # the event of a thread stream's marker: the thread was deleted


class Unreachable(Exception):
    """Redis did not answer (already logged)."""


def ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@dataclass(frozen=True)
class Keys:
    """Where the bus keeps things, under a prefix (the layout is in the package's docstring)."""

    prefix: str

    def run(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def output(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:output"

    def thread(self, thread_id: str) -> str:
        return f"{self.prefix}:thread:{thread_id}"

    def channel(self, kind: str) -> str:
        return f"{self.prefix}:{kind}"

    def breakers(self, reporter: str = "") -> str:
        """A worker's report of its circuit breakers (every report's prefix, without ``reporter``)."""
        return f"{self.prefix}:breakers:{reporter}"


class Link:
    """The client, and whether Redis answers. ``call`` bounds every command and turns a failure into
    ``Unreachable``; ``write`` drops a pipeline instead while writes are backed off."""

    def __init__(self, redis: Redis | str, prefix: str) -> None:
        """``redis``: a URL, or a client made with ``decode_responses=False`` (events are bytes). A client
        made here has no socket timeout (blocking reads take as long as a tick); every command is bounded
        by ``op_timeout_s`` instead."""
        if isinstance(redis, str):
            self.redis = Redis.from_url(redis, socket_timeout=None, socket_connect_timeout=op_timeout_s)
            self.owns_client = True
        else:
            self.redis, self.owns_client = redis, False
        if self.redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigError("RedisBus needs a Redis client with decode_responses=False: events are bytes")
        socket_timeout = self.redis.connection_pool.connection_kwargs.get("socket_timeout")
        # A blocking read must return before the client's own socket timeout would cut it.
        self.max_block_s: float | None = socket_timeout / 2 if socket_timeout else None
        self.keys = Keys(prefix)
        self.sender = uuid.uuid4().hex  # tells this bus's own messages, already delivered here, from others'
        self._reachable = True
        self._writes_resume_at = 0.0
        self._write_retry_s = write_retry_first_s

    async def write(self, op: str, pipe: Pipeline) -> list[Any] | None:
        """One pipeline; None when it was dropped because Redis is unreachable."""
        if time.monotonic() < self._writes_resume_at:
            return None
        try:
            return await self.call(op, pipe.execute)
        except Unreachable:
            return None

    async def call(self, op: str, call: Callable[[], Awaitable[T]], wait_s: float = 0.0) -> T:
        """``call()``, bounded by ``op_timeout_s`` beyond ``wait_s``; a failure is logged (once per outage)
        and raised as ``Unreachable``."""
        try:
            async with asyncio.timeout(op_timeout_s + wait_s):
                result = await call()
        except UNREACHABLE as exc:
            self.went_down(op, exc)
            raise Unreachable from exc
        self._came_back()
        return result

    def went_down(self, op: str, exc: BaseException) -> None:
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
            await self.call("ping", self.redis.ping)
        except Unreachable:
            return False
        return True

    async def aclose(self) -> None:
        """Close the client if this link made it."""
        if self.owns_client:
            await self.redis.aclose()
