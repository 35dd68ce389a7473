"""One real server per mode for the compatibility tests: ``graphrun dev`` (embedded, SQLite) and the
production topology (``graphrun api`` + ``graphrun worker`` on a fresh PostgreSQL database and a Redis
database of their own). Every test runs against both: the two modes keep one contract.

A module may define ``SERVER_ENV: dict[str, str]`` to start its servers with extra settings, and
``CONFIG: Path`` to serve another ``langgraph.json``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.acceptance._support import Server
from tests.production._cluster import (
    TEST_DATABASE_URI,
    Cluster,
    Procs,
    ServiceMissing,
    claimed_redis_db,
    fresh_database,
    production_env,
)

CONFIG = Path(__file__).resolve().parent / "langgraph.json"


class Target(Protocol):
    @property
    def url(self) -> str: ...
    def logs(self) -> str: ...


@dataclass
class Production:
    cluster: Cluster

    @property
    def url(self) -> str:
        return self.cluster.apis[0].url

    def logs(self) -> str:
        return self.cluster.logs()


@pytest.fixture(scope="module", params=["embedded", "production"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    extra_env: dict[str, str] = dict(getattr(request.module, "SERVER_ENV", {}))
    config: Path = getattr(request.module, "CONFIG", CONFIG)
    base = tmp_path_factory.mktemp(f"compat-{request.param}")
    if request.param == "embedded":
        server = Server(config=config, data_dir=base / "data", log_dir=base / "logs", extra_env=extra_env)
        try:
            server.start()
            yield server
        finally:
            server.stop()
        return
    with production(base, config, extra_env) as deployment:
        yield deployment


@contextlib.contextmanager
def production(
    base: Path,
    config: Path,
    extra_env: dict[str, str],
    *,
    name: str = "compat",
    postgres_uri: str = TEST_DATABASE_URI,
) -> Iterator[Production]:
    """One ``graphrun api`` and one ``graphrun worker`` with ``extra_env`` on a fresh database (on the
    PostgreSQL server at ``postgres_uri``) and a Redis database of their own. Everything stops on exit."""
    procs = Procs(log_dir=base / "logs", work_dir=base / "work")
    try:
        with fresh_database(name, postgres_uri) as database_uri, claimed_redis_db() as redis_uri:
            env = production_env(database_uri, redis_uri, **extra_env)
            cluster = Cluster(procs, env, config=config)
            try:
                cluster.migrate()
                cluster.add_api()
                cluster.add_worker()
                cluster.ensure_running()
                yield Production(cluster)
            finally:
                procs.stop_all()
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
async def client(target: Target) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=target.url, api_key=None, timeout=60.0) as c:
        yield c


@pytest.fixture
async def http(target: Target) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.url, timeout=60.0) as c:
        yield c


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    target = getattr(item, "funcargs", {}).get("target")
    if report.failed and target is not None:
        report.sections.append(("graphrun output", target.logs()))
    return report
