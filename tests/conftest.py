"""For every suite: when a test fails, the output of every server process it used goes into its report."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.harness.cluster import Cluster, LocalPostgres, Procs
from tests.harness.embedded import Server
from tests.harness.targets import Production


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
            if isinstance(value, (Server, Production, Cluster, Procs)):
                report.sections.append((f"graphrun output ({name})", value.logs()))
            elif isinstance(value, LocalPostgres):
                report.sections.append((f"PostgreSQL log ({name})", value.server_log()))
    return report
