"""The chaos drills' short form (bench/chaos.py): the ``worker_kill`` drill with a small bounded load (20
runs from 2 clients, paced so that some are in flight when the worker is SIGKILLed), on a PostgreSQL and a
Redis of its own, and the history checker's verdict on it: no run lost, no invariant violated. The full
drill set is a benchmark (bench/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos
from bench._servers import LocalPostgres, LocalRedis

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(600)]


async def test_a_worker_kill_drill_loses_no_run_and_violates_no_invariant(tmp_path: Path) -> None:
    for missing in (LocalPostgres.missing(), LocalRedis.missing()):
        if missing is not None:
            pytest.skip(missing)
    args = chaos.parse_args(
        [
            *("--drills", "worker_kill", "--concurrency", "2", "--max-runs", "20", "--pace-s", "0.5"),
            *("--before-s", "1", "--after-s", "3"),
        ]
    )
    [summary] = await chaos.run(args, tmp_path)

    assert summary["sent"] == 20, summary
    assert summary["lost"] == 0, summary
    assert summary["duplicated"] == 0, summary
    assert summary["unclear"] == 0, summary
    assert summary["violations"] == 0, summary["violations_by_check"]
    assert summary["succeeded"] + summary["failed_clear"] == summary["sent"], summary
    # The checker looked at something: every accepted run, its node executions and checkpoints.
    checked = summary["checked"]
    assert checked["runs"] == 20, checked
    assert checked["node executions"] >= summary["succeeded"], checked
    assert checked["checkpoints"] > 0, checked
    assert checked["stream resumes"] > 0, checked
