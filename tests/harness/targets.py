"""One server per mode: ``graphrun dev`` (embedded, SQLite) and the production topology (``graphrun api``
+ ``graphrun worker`` on a fresh PostgreSQL database and a Redis database of their own). A test that takes
``target`` runs against both: the two modes keep one contract.

A conftest imports ``target``, ``client`` and ``http`` from here, and may define a module-scoped
``target_config`` fixture: the ``langgraph.json`` served unless a test module defines ``CONFIG: Path``. A
test module may define ``SERVER_ENV: dict[str, str]`` to start its servers with extra settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.harness.cluster import (
    TEST_DATABASE_URI,
    Cluster,
    Procs,
    ServiceMissing,
    claimed_redis_db,
    fresh_database,
    production_env,
)
from tests.harness.embedded import embedded

MODES = ("embedded", "production")
CLIENT_TIMEOUT_S = 60.0


class Target(Protocol):
    """A running server in either mode."""

    @property
    def url(self) -> str: ...
    @property
    def log_dir(self) -> Path: ...
    def logs(self) -> str: ...


@dataclass
class Production:
    """A production deployment; ``url`` is its first API's."""

    cluster: Cluster

    @property
    def url(self) -> str:
        return self.cluster.apis[0].url

    @property
    def log_dir(self) -> Path:
        return self.cluster.procs.log_dir

    def logs(self) -> str:
        return self.cluster.logs()


@contextlib.contextmanager
def production(
    base: Path,
    config: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    name: str = "compat",
    postgres_uri: str = TEST_DATABASE_URI,
    apis: int = 1,
    workers: int = 1,
) -> Iterator[Production]:
    """``apis`` ``graphrun api`` and ``workers`` ``graphrun worker`` processes with ``extra_env`` on a fresh
    database (on the PostgreSQL server at ``postgres_uri``; ``name`` labels it) and a Redis database of
    their own, all serving. Everything stops on exit, the processes before the database and the Redis."""
    procs = Procs(log_dir=base / "logs", work_dir=base / "work")
    try:
        with fresh_database(name, postgres_uri) as database_uri, claimed_redis_db() as redis_uri:
            env = production_env(database_uri, redis_uri, **(extra_env or {}))
            cluster = Cluster(procs, env, config=config)
            try:
                cluster.migrate()
                for _ in range(apis):
                    cluster.add_api()
                for _ in range(workers):
                    cluster.add_worker()
                cluster.ensure_running()
                yield Production(cluster)
            finally:
                procs.stop_all()
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@contextlib.contextmanager
def started(
    mode: str, base: Path, config: Path, extra_env: Mapping[str, str] | None = None, *, name: str
) -> Iterator[Target]:
    """A server in ``mode`` (one of ``MODES``) serving ``config``; ``name`` labels its database."""
    if mode == "embedded":
        with embedded(base, config, extra_env) as server:
            yield server
    else:
        with production(base, config, extra_env, name=name) as deployment:
            yield deployment


@pytest.fixture(scope="module", params=MODES)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The module's server in each mode, with its ``SERVER_ENV``, serving its ``CONFIG`` (or the
    conftest's)."""
    extra_env: dict[str, str] = dict(getattr(request.module, "SERVER_ENV", {}))
    config: Path = getattr(request.module, "CONFIG", None) or request.getfixturevalue("target_config")
    base = tmp_path_factory.mktemp(f"target-{request.param}")
    with started(request.param, base, config, extra_env, name="compat") as server:
        yield server


@pytest.fixture
async def client(target: Target) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=target.url, api_key=None, timeout=CLIENT_TIMEOUT_S) as c:
        yield c


@pytest.fixture
async def http(target: Target) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP, for requests the SDK would never send."""
    async with httpx.AsyncClient(base_url=target.url, timeout=CLIENT_TIMEOUT_S) as c:
        yield c
