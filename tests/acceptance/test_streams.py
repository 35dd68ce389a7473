"""Streams as a client reads them: delayed runs, a client that goes away, and rejoining a run's stream."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.embedded import Server
from tests.harness.sdk import as_dict, sse_events
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


def _events(lines: list[str]) -> list[tuple[str | None, str, object]]:
    """(id, event, data) of each SSE event, its data decoded."""
    return [(event_id, name, json.loads(data)) for event_id, name, data in sse_events(lines)]


async def test_a_delayed_run_waits_for_its_time(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    run = await client.runs.create(thread_id, "counter", input={"count": 0, "trail": []}, after_seconds=2)

    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "pending"
    await asyncio.sleep(1.0)  # half its delay: an undelayed run would have finished long since
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "pending"
    out = as_dict(await client.runs.join(thread_id, run["run_id"]))
    assert out["trail"] == ["a", "b"]


async def test_a_stream_with_on_disconnect_cancel_cancels_its_run(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    body = {"assistant_id": "slow", "input": {"delay": 0.3, "steps": 30}, "on_disconnect": "cancel"}

    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response,
    ):
        run_id = response.headers["content-location"].rsplit("/", 1)[-1]
        async for line in response.aiter_lines():
            if line.startswith("event: values"):
                break  # the run is executing; now the client goes away

    run = await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda r: r["status"] != "running",
        what="the run to stop after its client left",
    )
    assert run["status"] == "interrupted"


async def test_rejoining_a_resumable_stream_with_last_event_id_misses_nothing(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    body = {
        "assistant_id": "slow",
        "input": {"delay": 0.2, "steps": 6},
        "stream_mode": ["updates"],
        "stream_resumable": True,
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        first: list[str] = []
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
            join_path = response.headers["location"]
            async for line in response.aiter_lines():
                first.append(line)
                if sum(1 for seen in first if seen.startswith("event: updates")) == 2 and line == "":
                    break  # the connection drops after two updates
        before = [e for e in _events(first) if e[1] == "updates"]
        last_id = before[-1][0]
        assert last_id is not None

        rest = await http.get(join_path, headers={"Last-Event-ID": last_id})
        after = [e for e in _events(rest.text.splitlines()) if e[1] == "updates"]

    steps = [next(iter(as_dict(data).values())) for _, _, data in before + after]
    assert [as_dict(s)["done"] for s in steps] == [[i] for i in range(6)]  # each step once, in order
    ids = [event_id for event_id, _, _ in before + after]
    assert len(set(ids)) == len(ids)
