"""A worker's own HTTP port (``GRAPHRUN_METRICS_PORT``), as Kubernetes' liveness probe and Prometheus use it:
``/ok`` answers 200 while the worker's loops turn and 503 once a graph has blocked its event loop for longer
than ``GRAPHRUN_LEASE_S``, while ``/metrics`` goes on answering with the heartbeat gauge standing still (what
the ``GraphrunWorkerHeartbeatStale`` alert reads, tests/deploy/test_alerting.py); both recover when the loop
does. Real processes on PostgreSQL and Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.cluster import (
    Cluster,
    Procs,
    ServiceMissing,
    claimed_redis_db,
    fresh_database,
    production_env,
)
from tests.harness.ports import free_port
from tests.harness.waiting import PROCESSES, eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

CONFIG = Path(__file__).resolve().parent / "worker_graph" / "langgraph.json"
BLOCK_S = 20.0  # well past the lease (3 s in the tests' settings)


def _heartbeat_age_s(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("graphrun_worker_heartbeat_timestamp_seconds "):
            return time.time() - float(line.split()[1])
    raise AssertionError(f"no heartbeat gauge in /metrics:\n{metrics_text[:2000]}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Cluster, str]]:
    procs = Procs(log_dir=tmp_path / "logs", work_dir=tmp_path / "work")
    port = free_port()
    try:
        with fresh_database("worker_health") as database_uri, claimed_redis_db() as redis_uri:
            env = production_env(database_uri, redis_uri, GRAPHRUN_METRICS_PORT=str(port))
            cluster = Cluster(procs, env, config=CONFIG)
            cluster.migrate()
            cluster.add_api()
            cluster.add_worker()
            cluster.ensure_running()
            yield cluster, f"http://127.0.0.1:{port}"
    except ServiceMissing as exc:
        pytest.skip(str(exc))
    finally:
        procs.stop_all()


async def test_a_worker_whose_event_loop_blocks_fails_its_liveness_and_recovers(
    cluster: tuple[Cluster, str],
) -> None:
    cl, health = cluster
    async with httpx.AsyncClient(base_url=health, timeout=5) as http:
        ok = await http.get("/ok")
        assert (ok.status_code, ok.json()) == (200, {"ok": True}), cl.logs()
        assert _heartbeat_age_s((await http.get("/metrics")).text) >= 0

        async with cl.client() as client:
            thread = await client.threads.create()
            run = await client.runs.create(thread["thread_id"], "blocker", input={"block_s": BLOCK_S})

            async def probe() -> httpx.Response:
                return await http.get("/ok")

            failed = await eventually(probe, lambda r: r.status_code == 503, what="/ok failing", **PROCESSES)
            assert "event loop has not turned" in failed.json()["error"], failed.text
            # The metrics thread still answers while the loop is blocked, with a heartbeat gone stale.
            assert _heartbeat_age_s((await http.get("/metrics")).text) > 3.0

            await eventually(probe, lambda r: r.status_code == 200, what="/ok recovering", **PROCESSES)
            await client.runs.join(thread["thread_id"], run["run_id"])
