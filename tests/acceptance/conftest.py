"""Fixtures: one real server process per test module, SDK and raw HTTP clients per test.

A module may define ``SERVER_ENV: dict[str, str]`` to start its server with extra settings. When a test fails,
the server's stdout and stderr are attached to the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from ._support import CONFIG, Server


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("graphrun")
    extra_env: dict[str, str] = dict(getattr(request.module, "SERVER_ENV", {}))
    srv = Server(config=CONFIG, data_dir=base / "data", log_dir=base / "logs", extra_env=extra_env)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[LangGraphClient]:
    async with server.client() as c:
        yield c


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP, for requests the SDK would never send."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as c:
        yield c


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    server = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(server, Server):
        report.sections.append(("graphrun server output", server.logs()))
    return report
