"""The ``store`` fixture: a fresh, empty control store per test, once per adapter; and the ``buses``
fixture: a fresh event bus per test, ``LocalBus`` (embedded) and ``RedisBus`` (production).

Each adapter is an async context manager factory. To run a whole suite against another adapter, write its
factory and add one ``pytest.param`` line to ``ADAPTERS`` or ``BUSES``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from graphrun.redisbus import RedisBus
from graphrun.stores.base import ControlStore
from graphrun.stores.postgres import PostgresStore
from graphrun.stores.sqlite import SqliteStore
from graphrun.streams import EventBus, LocalBus
from tests.conformance._servers import pg_schema
from tests.harness.bus import key_prefix, reachable_redis

StoreFactory = Callable[[Path], AbstractAsyncContextManager[ControlStore]]


@contextlib.asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[ControlStore]:
    async with SqliteStore(tmp_path / "control.sqlite3") as store:
        yield store


@contextlib.asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[ControlStore]:
    """A store in a schema of its own on the test database, dropped afterwards (conformance/_servers.py)."""
    async with pg_schema() as conninfo, PostgresStore(conninfo, min_size=1, max_size=4) as store:
        yield store


ADAPTERS = [
    pytest.param(sqlite_store, id="sqlite"),
    pytest.param(postgres_store, id="postgres"),
]


@pytest.fixture(params=ADAPTERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ControlStore]:
    """An open store with nothing in it: tests count and claim across the whole store."""
    factory: StoreFactory = request.param
    async with factory(tmp_path) as opened:
        yield opened


# ---------------------------------------------------------------- the event bus

Buses = tuple[EventBus, EventBus]
BusFactory = Callable[[], AbstractAsyncContextManager[Buses]]


@contextlib.asynccontextmanager
async def local_buses() -> AsyncIterator[Buses]:
    """One process: both handles are the same ``LocalBus``."""
    bus = LocalBus()
    yield bus, bus


@contextlib.asynccontextmanager
async def redis_buses() -> AsyncIterator[Buses]:
    """Two processes: two ``RedisBus``, each with its own client and listener, on one Redis and one key
    prefix of the test's own."""
    uri = await reachable_redis()
    async with (
        Redis.from_url(uri) as raw,
        key_prefix(raw) as prefix,
        RedisBus(uri, prefix=prefix) as bus,
        RedisBus(uri, prefix=prefix) as other,
    ):
        yield bus, other


BUSES = [
    pytest.param(local_buses, id="local"),
    pytest.param(redis_buses, id="redis"),
]


@pytest.fixture(params=BUSES)
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[Buses]:
    """Two handles on one bus, as two processes of a deployment see it (in embedded mode there is one
    process, so both are the same bus): what one publishes, the other reads."""
    factory: BusFactory = request.param
    async with factory() as opened:
        yield opened


@pytest.fixture
def bus(buses: Buses) -> EventBus:
    return buses[0]
