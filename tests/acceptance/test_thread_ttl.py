"""Thread time to live: a thread not updated for its TTL is deleted with its runs and checkpoints.

The server sweeps every 0.2 s here; TTLs are given in minutes, as the SDK sends them.
"""

from __future__ import annotations

import httpx
from langgraph_sdk.client import LangGraphClient

from tests.harness.waiting import eventually

SERVER_ENV = {"GRAPHRUN_TTL_SWEEP_INTERVAL_S": "0.2"}
SHORT_TTL_MIN = 0.01  # 0.6 s


async def _exists(http: httpx.AsyncClient, thread_id: str) -> bool:
    return (await http.get(f"/threads/{thread_id}")).status_code == 200


async def test_a_thread_past_its_ttl_is_deleted_with_its_runs_and_checkpoints(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    short = (await client.threads.create(ttl={"ttl": SHORT_TTL_MIN, "strategy": "delete"}))["thread_id"]
    kept = (await client.threads.create(ttl=60))["thread_id"]
    plain = (await client.threads.create())["thread_id"]
    run = await client.runs.create(short, "counter", input={})
    await client.runs.join(short, run["run_id"])

    await eventually(lambda: _exists(http, short), lambda found: not found, what="the short thread to go")

    assert (await http.get(f"/threads/{short}/runs/{run['run_id']}")).status_code == 404
    assert (await http.get(f"/threads/{short}/state")).status_code == 404
    assert await _exists(http, kept)
    assert await _exists(http, plain)  # no TTL of its own, and the server sets no default


async def test_updating_a_thread_sets_its_ttl(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    await client.threads.update(thread_id, metadata={"k": "v"}, ttl={"ttl": SHORT_TTL_MIN})

    await eventually(lambda: _exists(http, thread_id), lambda found: not found, what="the thread to go")


async def test_a_bad_ttl_is_refused_and_nothing_is_created(http: httpx.AsyncClient) -> None:
    before = (await http.post("/threads/count", json={})).json()
    for ttl in ({"ttl": 0}, {"ttl": -1}, {"ttl": 5, "strategy": "archive"}, 5):
        response = await http.post("/threads", json={"ttl": ttl})
        assert response.status_code == 422, ttl
        assert "ttl" in response.json()["detail"], ttl
    assert (await http.post("/threads/count", json={})).json() == before
