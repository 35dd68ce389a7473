"""The ``store`` fixture: a fresh, empty control store per test, once per adapter.

Each adapter is an async context manager factory taking the test's ``tmp_path``. To run the whole suite
against another adapter, write its factory and add one ``pytest.param`` line to ``ADAPTERS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from graphrun.stores.base import ControlStore
from graphrun.stores.postgres import PostgresStore
from graphrun.stores.sqlite import SqliteStore
from tests.conformance._servers import pg_schema

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
