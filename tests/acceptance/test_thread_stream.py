"""A thread's stream (``GET /threads/{id}/stream``): every run on the thread, their lifecycle, state updates.

A thread stream never ends on its own, so each test reads a counted number of events and then leaves. To know
that the server follows the thread before a run is started, a test waits for the stream's first heartbeat
comment (the keep-alive is made short here): the server sends it only once it is listening.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from tests.harness.embedded import Server
from tests.harness.sdk import as_dict

from ._support import new_thread
from .test_stream_modes import Sse, SseReader

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]

SERVER_ENV = {"GRAPHRUN_SSE_KEEPALIVE_S": "0.2"}

READ_TIMEOUT_S = 20.0


@contextlib.asynccontextmanager
async def _joined(
    server: Server, thread_id: str, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    """The thread's stream, open and followed by the server (its first heartbeat has arrived)."""
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        http.stream("GET", f"/threads/{thread_id}/stream{query}", headers=headers or {}) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"thread stream answered {response.status_code}: {response.text}")
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        assert await reader.comment() == ": heartbeat"
        yield reader


def _start(run_id: str) -> tuple[str, Any]:
    return ("metadata", {"run_id": run_id, "attempt": 1})


def _done(run_id: str) -> tuple[str, Any]:
    return ("metadata", {"status": "run_done", "run_id": run_id})


def _pairs(events: list[Sse]) -> list[tuple[str, Any]]:
    return [(e.event, e.data) for e in events]


async def test_run_modes_streams_every_event_of_each_run_started_after_joining(
    server: Server, client: LangGraphClient
) -> None:
    """The default mode: each run's events as its own stream publishes them, then its ``run_done``."""
    thread_id = await new_thread(client)

    async with _joined(server, thread_id) as reader:
        first = await client.runs.create(thread_id, "counter", input={"count": 0}, stream_mode="updates")
        await client.runs.join(thread_id, first["run_id"])
        second = await client.runs.create(
            thread_id, "counter", input={"count": 5}, stream_mode=["updates", "values"]
        )
        await client.runs.join(thread_id, second["run_id"])
        events = await reader.events(11, READ_TIMEOUT_S)

    assert _pairs(events) == [
        _start(first["run_id"]),
        ("updates", {"a": {"count": 1, "trail": ["a"]}}),
        ("updates", {"b": {"count": 2, "trail": ["b"]}}),
        _done(first["run_id"]),
        _start(second["run_id"]),
        ("values", {"count": 5, "trail": ["a", "b"]}),
        ("updates", {"a": {"count": 6, "trail": ["a"]}}),
        ("values", {"count": 6, "trail": ["a", "b", "a"]}),
        ("updates", {"b": {"count": 7, "trail": ["b"]}}),
        ("values", {"count": 7, "trail": ["a", "b", "a", "b"]}),
        _done(second["run_id"]),
    ]


async def test_lifecycle_streams_only_the_start_and_end_of_each_run(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)

    async with _joined(server, thread_id, "?stream_mode=lifecycle") as reader:
        first = await client.runs.create(
            thread_id, "counter", input={"count": 0}, stream_mode=["updates", "values"]
        )
        await client.runs.join(thread_id, first["run_id"])
        second = await client.runs.create(thread_id, "failing", input={}, stream_mode=["updates", "values"])
        await client.runs.join(thread_id, second["run_id"])
        events = await reader.events(4, READ_TIMEOUT_S)

    assert _pairs(events) == [
        _start(first["run_id"]),
        _done(first["run_id"]),
        _start(second["run_id"]),
        _done(second["run_id"]),
    ]


async def test_state_update_streams_the_new_state_after_an_update_and_nothing_of_runs(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0})

    async with _joined(server, thread_id, "?stream_mode=state_update") as reader:
        await client.threads.update_state(thread_id, {"count": 10})
        (update,) = await reader.events(1, READ_TIMEOUT_S)
        after_update = await client.threads.get_state(thread_id)
        run = await client.runs.create(
            thread_id, "counter", input={"count": 0}, stream_mode=["updates", "values"]
        )
        await client.runs.join(thread_id, run["run_id"])
        await client.threads.update_state(thread_id, {"count": 20})
        (second,) = await reader.events(1, READ_TIMEOUT_S)  # the run between sent nothing here
        after_second = await client.threads.get_state(thread_id)

    assert update == Sse("state_update", {"state": after_update, "thread_id": thread_id}, update.id)
    assert as_dict(after_update["values"])["count"] == 10
    assert second == Sse("state_update", {"state": after_second, "thread_id": thread_id}, second.id)
    assert as_dict(after_second["values"]) == {"count": 20, "trail": ["a", "b", "a", "b"]}


@pytest.mark.parametrize(
    "query",
    ["?stream_mode=lifecycle&stream_mode=state_update", "?stream_modes=lifecycle,state_update"],
)
async def test_several_thread_stream_modes_at_once(
    server: Server, client: LangGraphClient, query: str
) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0})

    async with _joined(server, thread_id, query) as reader:
        await client.threads.update_state(thread_id, {"count": 10})
        run = await client.runs.create(thread_id, "counter", input={"count": 0}, stream_mode="updates")
        await client.runs.join(thread_id, run["run_id"])
        events = await reader.events(3, READ_TIMEOUT_S)

    assert [e.event for e in events] == ["state_update", "metadata", "metadata"]
    assert as_dict(events[0].data)["thread_id"] == thread_id
    assert _pairs(events[1:]) == [_start(run["run_id"]), _done(run["run_id"])]


async def test_an_idle_thread_stream_sends_heartbeats_and_nothing_else(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)

    async with _joined(server, thread_id) as reader:
        assert await reader.comment() == ": heartbeat"
        assert await reader.comment() == ": heartbeat"

    assert reader.seen == []


async def test_last_event_id_replays_the_thread_events_after_it(
    server: Server, client: LangGraphClient
) -> None:
    """Events read live, then the same thread joined again through the SDK from the first one's id."""
    thread_id = await new_thread(client)
    async with _joined(server, thread_id) as reader:
        run = await client.runs.create(
            thread_id, "counter", input={"count": 0}, stream_mode="updates", stream_resumable=True
        )
        await client.runs.join(thread_id, run["run_id"])
        live = await reader.events(4, READ_TIMEOUT_S)
    assert _pairs(live)[0] == _start(run["run_id"])
    assert _pairs(live)[-1] == _done(run["run_id"])
    first_id = live[0].id
    assert first_id is not None
    assert all(e.id for e in live)

    replayed: list[StreamPart] = []
    parts = await client.threads.join_stream(thread_id, last_event_id=first_id)
    async with (
        asyncio.timeout(READ_TIMEOUT_S),
        contextlib.aclosing(cast(AsyncGenerator[StreamPart, None], parts)) as stream,
    ):
        async for part in stream:
            replayed.append(part)
            if len(replayed) == len(live) - 1:
                break

    assert [(p.event, p.data, p.id) for p in replayed] == [(e.event, e.data, e.id) for e in live[1:]]


async def test_a_malformed_last_event_id_on_a_thread_stream_is_422(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = await new_thread(client)

    r = await http.get(f"/threads/{thread_id}/stream", headers={"Last-Event-ID": "not-an-id"})

    assert r.status_code == 422, r.text
    assert "not-an-id" in r.text


async def _first_part(thread_stream: Any) -> StreamPart | None:
    """Open a thread stream through the SDK and read its first event (the SDK raises on an error status)."""
    async with asyncio.timeout(READ_TIMEOUT_S):
        parts = cast(AsyncGenerator[StreamPart, None], await thread_stream)
        async with contextlib.aclosing(parts) as stream:
            async for part in stream:
                return part
    return None


async def test_the_stream_of_an_unknown_thread_is_404(client: LangGraphClient) -> None:
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await _first_part(client.threads.join_stream(str(uuid4())))

    response = excinfo.value.response
    assert response.status_code == 404
    await response.aread()
    assert "thread" in response.text.lower()  # the thread is unknown, not the route


async def test_an_unknown_thread_stream_mode_is_422(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(client)

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await _first_part(client.threads.join_stream(thread_id, stream_mode=cast(Any, "no-such-mode")))
    listed = await http.get(f"/threads/{thread_id}/stream", params={"stream_modes": "lifecycle,no-such-mode"})

    response = excinfo.value.response
    assert response.status_code == 422
    await response.aread()
    assert "no-such-mode" in response.text
    assert listed.status_code == 422, listed.text
    assert "no-such-mode" in listed.text
