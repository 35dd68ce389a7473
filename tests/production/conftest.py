"""Fixtures: a production deployment on loopback (2 ``graphrun api`` + 2 ``graphrun worker`` processes on a
fresh PostgreSQL database and a Redis database of their own) per test module, and a process list per test
for the processes a test starts itself.

Every process is killed at teardown, whatever happened; when a test fails, the output of every process it
used (and of any PostgreSQL it started) is attached to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from ._cluster import (
    Cluster,
    LocalPostgres,
    LocalRedis,
    Procs,
    ServiceMissing,
    claimed_redis_db,
    fresh_database,
    production_env,
)

API_PROCESSES = 2
WORKER_PROCESSES = 2


@pytest.fixture(scope="module")
def _deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("production")
    procs = Procs(log_dir=base / "logs", work_dir=base / "work")
    try:
        with fresh_database("cluster") as database_uri, claimed_redis_db() as redis_uri:
            cluster = Cluster(procs, production_env(database_uri, redis_uri))
            try:
                cluster.migrate()
                for _ in range(API_PROCESSES):
                    cluster.add_api()
                for _ in range(WORKER_PROCESSES):
                    cluster.add_worker()
                cluster.ensure_running()
                yield cluster
            finally:
                procs.stop_all()  # before the database and the Redis go
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def cluster(_deployment: Cluster) -> Cluster:
    """The module's deployment with every process running: one that an earlier test stopped or killed is
    started again (an API on its port) before the test begins."""
    _deployment.ensure_running()
    return _deployment


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Processes a test starts itself; all killed when it ends."""
    group = Procs(log_dir=tmp_path / "logs", work_dir=tmp_path / "work")
    try:
        yield group
    finally:
        group.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        seen: set[int] = set()
        for name, value in getattr(item, "funcargs", {}).items():
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, (Cluster, Procs)):
                report.sections.append((f"process output ({name})", value.logs()))
            elif isinstance(value, LocalPostgres):
                report.sections.append((f"PostgreSQL log ({name})", value.server_log()))
    return report


@pytest.fixture
def local_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL of the test's own, started; the test may stop and start it. Destroyed afterwards."""
    missing = LocalPostgres.missing()
    if missing is not None:
        pytest.skip(missing)
    server = LocalPostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def local_redis(procs: Procs) -> LocalRedis:
    """A Redis of the test's own, started; the test may kill and start it (it is one of ``procs``)."""
    missing = LocalRedis.missing()
    if missing is not None:
        pytest.skip(missing)
    server = LocalRedis(procs)
    server.start()
    return server


@pytest.fixture
def database_uri() -> Iterator[str]:
    """A fresh database of the test's own on the shared PostgreSQL, dropped afterwards (list it before
    ``procs`` so that the processes stop first)."""
    try:
        with fresh_database("test") as uri:
            yield uri
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def redis_uri() -> Iterator[str]:
    """A Redis database of the test's own on the shared Redis, flushed afterwards (list it before procs)."""
    try:
        with claimed_redis_db() as uri:
            yield uri
    except ServiceMissing as exc:
        pytest.fail(str(exc), pytrace=False)
