"""Fixtures: one real ``graphrun dev`` per test module (``server``, also the ``target`` of the harness's
``client`` and ``http``). A module may define ``SERVER_ENV: dict[str, str]`` to start its server with extra
settings. When a test fails, the server's output is attached to the report (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.embedded import Server, embedded
from tests.harness.targets import client, http

from ._support import CONFIG

__all__ = ["client", "http", "server", "target"]


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    extra_env: dict[str, str] = dict(getattr(request.module, "SERVER_ENV", {}))
    with embedded(tmp_path_factory.mktemp("graphrun"), CONFIG, extra_env) as srv:
        yield srv


@pytest.fixture(scope="module")
def target(server: Server) -> Server:
    return server
