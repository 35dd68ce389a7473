"""Production mode's request limits, and its warning when no API keys are set. ``GRAPHRUN_RATE_LIMIT``:
two API processes count one client's requests together, through Redis, so spreading requests over them
does not raise the limit."""

from __future__ import annotations

import httpx
import pytest

from tests.harness.cluster import CONFIG, Cluster, Procs, claimed_redis_db, fresh_database, production_env

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]


async def test_two_apis_share_one_clients_limit(procs: Procs) -> None:
    with fresh_database("ratelimit") as database_uri, claimed_redis_db() as redis_uri:
        cluster = Cluster(
            procs, production_env(database_uri, redis_uri, GRAPHRUN_RATE_LIMIT="6/minute"), CONFIG
        )
        cluster.migrate()
        cluster.add_api()
        cluster.add_api()
        cluster.ensure_running()
        async with httpx.AsyncClient(timeout=30) as http:
            codes = []
            for i in range(8):
                api = cluster.apis[i % 2]
                codes.append((await http.post(f"{api.url}/threads/count", json={})).status_code)

    assert codes == [200] * 6 + [429, 429], "six in all across both APIs, not six each"


def test_an_api_without_keys_warns_loudly_at_start_up(cluster: Cluster) -> None:
    api_log, worker_log = cluster.apis[0].output(), cluster.workers[0].output()

    assert '"event":"authentication_off"' in api_log.replace(" ", "")
    assert "GRAPHRUN_API_KEYS" in api_log
    assert "authentication_off" not in worker_log, "a worker serves no clients"
