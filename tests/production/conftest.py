"""Fixtures: a production deployment on loopback (2 ``graphrun api`` + 2 ``graphrun worker`` processes on a
fresh PostgreSQL database and a Redis database of their own) per test module, and a process list per test
for the processes a test starts itself.

Every process is killed at teardown, whatever happened; when a test fails, the output of every process it
used (and of any PostgreSQL it started) is attached to its report (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import (
    CONFIG,
    Cluster,
    LocalPostgres,
    LocalRedis,
    Procs,
    ServiceMissing,
    claimed_redis_db,
    fresh_database,
)
from tests.harness.targets import production

API_PROCESSES = 2
WORKER_PROCESSES = 2


@pytest.fixture(scope="module")
def _deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("production")
    with production(base, CONFIG, name="cluster", apis=API_PROCESSES, workers=WORKER_PROCESSES) as deployment:
        yield deployment.cluster


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
