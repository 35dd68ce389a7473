"""Run streams mode by mode, as the official server sends them; resuming a stream; a client that goes away.

The SDK (``client.runs.stream``) reads what a client sees; raw HTTP (``SseReader``) reads what the SDK hides:
event ids, heartbeat comments, the framing, and requests the SDK would never send. The keep-alive interval is
made short here so that an idle stream shows its heartbeats within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from tests.harness.embedded import Server
from tests.harness.sdk import as_dict
from tests.harness.waiting import eventually

from ._support import human, new_thread

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]

SERVER_ENV = {"GRAPHRUN_SSE_KEEPALIVE_S": "0.2"}

EVENT_ID = re.compile(r"^\d+-\d+$")
READ_TIMEOUT_S = 20.0


# --- reading SSE by hand ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sse:
    """One event as it came on the wire; ``id`` is the event's own ``id:`` line, None when it had none."""

    event: str
    data: Any
    id: str | None


class SseReader:
    """Reads an SSE response line by line, as an EventSource does, keeping the comment lines it skips."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self._pending: list[Sse] = []
        self.comments: list[str] = []
        self.seen: list[Sse] = []

    async def _read(self) -> Sse | str | None:
        """The next event, or the next comment line, or None at the end of the stream."""
        name, event_id = "", None
        data: list[str] = []
        async for line in self._lines:
            if line == "":
                if name or data:
                    return Sse(name or "message", json.loads("\n".join(data)), event_id)
                continue
            if line.startswith(":"):
                self.comments.append(line)
                return line
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
        return None

    async def event(self, timeout_s: float = READ_TIMEOUT_S) -> Sse | None:
        """The next event (None at the end of the stream), skipping comments."""
        if self._pending:
            return self._pending.pop(0)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    item = await self._read()
                    if not isinstance(item, str):
                        if item is not None:
                            self.seen.append(item)
                        return item
        except TimeoutError:
            raise AssertionError(f"no event within {timeout_s}s; so far: {self.seen!r}") from None

    async def events(self, count: int, timeout_s: float = READ_TIMEOUT_S) -> list[Sse]:
        found: list[Sse] = []
        while len(found) < count:
            item = await self.event(timeout_s)
            assert item is not None, f"the stream ended after {found!r}, expected {count} events"
            found.append(item)
        return found

    async def rest(self, timeout_s: float = READ_TIMEOUT_S) -> list[Sse]:
        """Every event until the server closes the stream."""
        found: list[Sse] = []
        while (item := await self.event(timeout_s)) is not None:
            found.append(item)
        return found

    async def comment(self, timeout_s: float = READ_TIMEOUT_S) -> str:
        """Read until the next comment line; events read meanwhile stay queued for ``event``."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    item = await self._read()
                    assert item is not None, f"the stream ended without a comment; events: {self.seen!r}"
                    if isinstance(item, str):
                        return item
                    self.seen.append(item)
                    self._pending.append(item)
        except TimeoutError:
            raise AssertionError(f"no comment line within {timeout_s}s; events: {self.seen!r}") from None


def id_order(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq)


# --- helpers ------------------------------------------------------------------------------------------------


async def _stream(
    client: LangGraphClient, thread_id: str | None, assistant_id: str, **kwargs: Any
) -> list[StreamPart]:
    return [part async for part in client.runs.stream(thread_id, assistant_id, **kwargs)]


def _names(parts: list[StreamPart]) -> list[str]:
    return [p.event for p in parts]


def _tokens(count: int, delay_s: float = 0.0) -> dict[str, Any]:
    """Config of `tokens`: the model answers "tok0 … tok<count-1>", waiting ``delay_s`` before each chunk."""
    return {"configurable": {"tokens": count, "token_delay": delay_s}}


def _answer(count: int) -> str:
    return " ".join(f"tok{i}" for i in range(count))


def _chunks(count: int) -> list[str]:
    """The chunks the fake model streams for that answer: each word, and each space between two words."""
    pieces: list[str] = []
    for i in range(count):
        pieces += [" ", f"tok{i}"] if i else [f"tok{i}"]
    return pieces


# --- metadata first, no end ---------------------------------------------------------------------------------


async def test_the_first_event_is_metadata_with_the_run_id_and_there_is_no_end_event(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "counter", input={"count": 0}, stream_mode=["updates"])

    runs = await client.runs.list(thread_id)
    assert parts[0] == StreamPart("metadata", {"run_id": runs[0]["run_id"], "attempt": 1}, None)
    assert _names(parts) == ["metadata", "updates", "updates"]  # the stream just closes: no `end`


async def test_a_waited_run_opens_its_stream_with_metadata_too(
    server: Server, client: LangGraphClient
) -> None:
    """``runs.wait`` is not streamed as it is created, so the worker announces it as it starts it: its
    resumable stream, replayed from the start, opens like any other."""
    thread_id = await new_thread(client)
    # stream_resumable is not among the SDK wait() arguments: post the body
    body = {"assistant_id": "counter", "input": {"count": 0}, "stream_resumable": True}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        waited = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert waited.status_code == 200, waited.text
    run_id = (await client.runs.list(thread_id))[0]["run_id"]

    def replay() -> list[StreamPart]:
        with get_sync_client(url=server.url, api_key=None, timeout=30) as sync_client:
            return list(sync_client.runs.join_stream(thread_id, run_id, last_event_id="-1"))

    parts = await asyncio.to_thread(replay)

    assert parts[0].event == "metadata"
    assert parts[0].data == {"run_id": run_id, "attempt": 1}
    assert _names(parts).count("metadata") == 1


async def test_a_waited_run_cancelled_before_it_starts_still_opens_with_metadata(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    # Streaming tokens, the model takes 3 s: long enough to hold the thread.
    slow = cast(Any, _tokens(30, delay_s=0.1))
    first = await client.runs.create(
        thread_id, "tokens", input=human("hi"), config=slow, stream_mode=["messages-tuple"]
    )
    body = {
        "assistant_id": "counter",
        "input": {"count": 0},
        "stream_resumable": True,
        "multitask_strategy": "enqueue",
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        waiting = asyncio.create_task(http.post(f"/threads/{thread_id}/runs/wait", json=body))
        second = lambda: _second_run(client, thread_id, first["run_id"])  # noqa: E731
        found = await eventually(second, lambda r: r is not None, what="the queued run")
        queued = str(found)
        await client.runs.cancel(thread_id, queued)
        assert (await waiting).status_code == 200

    def replay() -> list[StreamPart]:
        with get_sync_client(url=server.url, api_key=None, timeout=30) as sync_client:
            return list(sync_client.runs.join_stream(thread_id, queued, last_event_id="-1"))

    parts = await asyncio.to_thread(replay)

    assert (await client.runs.get(thread_id, queued))["status"] == "interrupted"
    assert [(p.event, p.data) for p in parts] == [("metadata", {"run_id": queued, "attempt": 1})]
    await client.runs.cancel(thread_id, first["run_id"])


async def _second_run(client: LangGraphClient, thread_id: str, first: str) -> str | None:
    return next((r["run_id"] for r in await client.runs.list(thread_id) if r["run_id"] != first), None)


# --- each mode alone ----------------------------------------------------------------------------------------


async def test_values_mode_sends_the_whole_state_after_each_step(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "nested", input={"count": 0}, stream_mode="values")

    assert _names(parts) == ["metadata", "values", "values", "values"]
    assert [p.data for p in parts[1:]] == [
        {"count": 0, "trail": []},
        {"count": 2, "trail": ["a", "b"]},
        {"count": 2, "trail": ["a", "b", "after"]},
    ]


async def test_updates_mode_sends_what_each_node_returned(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "nested", input={"count": 0}, stream_mode="updates")

    assert _names(parts) == ["metadata", "updates", "updates"]
    assert [p.data for p in parts[1:]] == [
        {"inner": {"count": 2, "trail": ["a", "b"]}},
        {"after": {"trail": ["after"]}},
    ]


async def test_custom_mode_sends_what_the_node_wrote(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(
        client, thread_id, "tokens", input=human("hi"), config=_tokens(3), stream_mode="custom"
    )

    assert _names(parts) == ["metadata", "custom", "custom"]
    assert [p.data for p in parts[1:]] == [{"progress": 0}, {"progress": 1}]


async def test_tasks_mode_sends_each_task_start_and_its_result(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "counter", input={"count": 0}, stream_mode="tasks")

    assert _names(parts) == ["metadata", "tasks", "tasks", "tasks", "tasks"]
    start_a, end_a, start_b, end_b = (p.data for p in parts[1:])
    assert [t["name"] for t in (start_a, end_a, start_b, end_b)] == ["a", "a", "b", "b"]
    assert start_a["id"] == end_a["id"] != start_b["id"] == end_b["id"]
    assert start_a["input"] == {"count": 0, "trail": []}
    assert start_a["triggers"] == ["branch:to:a"]
    assert {k: end_a[k] for k in ("error", "result", "interrupts")} == {
        "error": None,
        "result": {"count": 1, "trail": ["a"]},
        "interrupts": [],
    }
    assert start_b["input"] == {"count": 1, "trail": ["a"]}
    assert end_b["result"] == {"count": 2, "trail": ["b"]}


async def test_checkpoints_mode_sends_each_checkpoint_linked_to_its_parent(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "counter", input={"count": 0}, stream_mode="checkpoints")

    assert _names(parts) == ["metadata", *["checkpoints"] * 4]
    checkpoints = [p.data for p in parts[1:]]
    assert [c["metadata"]["step"] for c in checkpoints] == [-1, 0, 1, 2]
    ids = [c["config"]["configurable"]["checkpoint_id"] for c in checkpoints]
    assert checkpoints[0]["parent_config"] is None
    assert [c["parent_config"]["configurable"]["checkpoint_id"] for c in checkpoints[1:]] == ids[:-1]
    assert {c["config"]["configurable"]["thread_id"] for c in checkpoints} == {thread_id}
    assert checkpoints[-1]["values"] == {"count": 2, "trail": ["a", "b"]}
    assert checkpoints[-1]["next"] == []
    state = await client.threads.get_state(thread_id)
    assert as_dict(state["checkpoint"])["checkpoint_id"] == ids[-1]


async def test_debug_mode_checkpoint_events_carry_checkpoint_and_parent_checkpoint(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "counter", input={"count": 0}, stream_mode="debug")

    assert _names(parts) == ["metadata", *["debug"] * 8]
    debug = [p.data for p in parts[1:]]
    assert [d["type"] for d in debug] == [
        "checkpoint",
        "checkpoint",
        "task",
        "task_result",
        "checkpoint",
        "task",
        "task_result",
        "checkpoint",
    ]
    assert [d["step"] for d in debug if d["type"] == "checkpoint"] == [-1, 0, 1, 2]
    assert [d["payload"]["name"] for d in debug if d["type"] != "checkpoint"] == ["a", "a", "b", "b"]
    payloads = [d["payload"] for d in debug if d["type"] == "checkpoint"]
    allowed = {"thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint_map"}
    for payload in payloads:
        checkpoint = payload["checkpoint"]
        assert set(checkpoint) <= allowed, checkpoint
        assert checkpoint["thread_id"] == thread_id
        assert checkpoint["checkpoint_ns"] == ""
        assert checkpoint["checkpoint_id"] == payload["config"]["configurable"]["checkpoint_id"]
    assert payloads[0]["parent_checkpoint"] is None
    ids = [p["checkpoint"]["checkpoint_id"] for p in payloads]
    parents = [p["parent_checkpoint"] for p in payloads[1:]]
    assert all(set(parent) <= allowed and parent["thread_id"] == thread_id for parent in parents)
    assert [parent["checkpoint_id"] for parent in parents] == ids[:-1]
    history = await client.threads.get_history(thread_id, limit=10)
    assert [as_dict(h["checkpoint"])["checkpoint_id"] for h in history] == ids[::-1]


async def test_messages_tuple_mode_sends_each_chunk_with_its_metadata(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(
        client, thread_id, "tokens", input=human("hi"), config=_tokens(3), stream_mode="messages-tuple"
    )

    run_id = parts[0].data["run_id"]
    assert _names(parts) == ["metadata", *["messages"] * 5]
    pairs = [cast(list[Any], p.data) for p in parts[1:]]
    assert all(len(pair) == 2 for pair in pairs)
    chunks = [as_dict(chunk) for chunk, _ in pairs]
    assert [c["content"] for c in chunks] == _chunks(3)
    assert {c["type"] for c in chunks} == {"AIMessageChunk"}
    assert len({c["id"] for c in chunks}) == 1
    for _, metadata in pairs:
        assert metadata["langgraph_node"] == "talk"
        assert metadata["run_id"] == run_id
        assert metadata["thread_id"] == thread_id
    answer = as_dict((await client.threads.get_state(thread_id))["values"])["messages"][-1]
    assert (answer["id"], answer["content"]) == (chunks[0]["id"], _answer(3))


async def test_messages_mode_sends_metadata_then_the_message_so_far(client: LangGraphClient) -> None:
    """The official "messages" mode: ``messages/metadata`` once per message, then ``messages/partial`` with
    the whole message accumulated so far, its content growing chunk by chunk."""
    thread_id = await new_thread(client)

    parts = await _stream(
        client, thread_id, "tokens", input=human("hi"), config=_tokens(3), stream_mode="messages"
    )

    run_id = parts[0].data["run_id"]
    assert _names(parts) == ["metadata", "messages/metadata", *["messages/partial"] * 5]
    metadata = as_dict(parts[1].data)
    assert len(metadata) == 1
    message_id, entry = next(iter(metadata.items()))
    assert set(entry) == {"metadata"}
    assert entry["metadata"]["langgraph_node"] == "talk"
    assert entry["metadata"]["run_id"] == run_id
    partials = [cast(list[Any], p.data) for p in parts[2:]]
    assert all(len(p) == 1 for p in partials)
    messages = [as_dict(p[0]) for p in partials]
    assert [m["content"] for m in messages] == ["tok0", "tok0 ", "tok0 tok1", "tok0 tok1 ", "tok0 tok1 tok2"]
    assert {m["id"] for m in messages} == {message_id}
    assert {m["type"] for m in messages} == {"AIMessageChunk"}


async def test_messages_mode_sends_a_message_a_node_returned_whole_as_complete(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "echo", input=human("yo"), stream_mode="messages")

    assert _names(parts) == ["metadata", "messages/metadata", "messages/complete"]
    ((message_id, entry),) = as_dict(parts[1].data).items()
    assert entry["metadata"]["langgraph_node"] == "reply"
    complete = cast(list[Any], parts[2].data)
    assert len(complete) == 1
    message = as_dict(complete[0])
    assert (message["type"], message["content"], message["id"]) == ("ai", "echo: yo", message_id)


async def test_messages_mode_sends_metadata_before_each_new_message(client: LangGraphClient) -> None:
    """A streamed message then a whole one: each starts with its own ``messages/metadata``."""
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "draft_and_sign", input=human("go"), stream_mode="messages")

    assert _names(parts) == [
        "metadata",
        "messages/metadata",
        *["messages/partial"] * 3,
        "messages/metadata",
        "messages/complete",
    ]
    ((draft_id, draft_meta),) = as_dict(parts[1].data).items()
    ((sign_id, sign_meta),) = as_dict(parts[5].data).items()
    assert draft_id != sign_id
    assert (draft_meta["metadata"]["langgraph_node"], sign_meta["metadata"]["langgraph_node"]) == (
        "draft",
        "sign",
    )
    partials = [as_dict(cast(list[Any], p.data)[0]) for p in parts[2:5]]
    assert [(m["id"], m["content"]) for m in partials] == [
        (draft_id, "draft"),
        (draft_id, "draft "),
        (draft_id, "draft one"),
    ]
    signed = as_dict(cast(list[Any], parts[6].data)[0])
    assert (signed["id"], signed["type"], signed["content"]) == (sign_id, "ai", "signed")


async def test_messages_mode_sends_only_the_messages_of_this_run(client: LangGraphClient) -> None:
    """On a second turn the thread's earlier messages (the input of the node) are not sent again."""
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "echo", input=human("one"))

    parts = await _stream(client, thread_id, "echo", input=human("two"), stream_mode="messages")

    assert _names(parts) == ["metadata", "messages/metadata", "messages/complete"]
    assert as_dict(cast(list[Any], parts[2].data)[0])["content"] == "echo: two"


async def test_events_mode_sends_langchain_events_and_other_modes_keep_their_names(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(
        client, thread_id, "tokens", input=human("hi"), config=_tokens(3), stream_mode=["events", "custom"]
    )

    assert parts[0].event == "metadata"
    assert set(_names(parts[1:])) == {"events", "custom"}
    assert [p.data for p in parts if p.event == "custom"] == [{"progress": 0}, {"progress": 1}]
    events = [as_dict(p.data) for p in parts if p.event == "events"]
    kinds = [e["event"] for e in events]
    for kind in ("on_chain_start", "on_chat_model_start", "on_chat_model_stream", "on_chat_model_end"):
        assert kind in kinds, kinds
    stream = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert [e["data"]["chunk"]["content"] for e in stream] == _chunks(3)
    for e in stream:
        assert isinstance(e["name"], str)
        assert e["name"]
        assert isinstance(e["run_id"], str)
        assert e["run_id"]
        assert e["metadata"]["langgraph_node"] == "talk"
    # The custom events are where the node wrote them: before the model streamed, and after.
    names = _names(parts)
    first_chunk = next(
        i for i, p in enumerate(parts) if p.event == "events" and p.data["event"] == "on_chat_model_stream"
    )
    last_chunk = max(
        i for i, p in enumerate(parts) if p.event == "events" and p.data["event"] == "on_chat_model_stream"
    )
    assert names.index("custom") < first_chunk
    assert len(names) - 1 - names[::-1].index("custom") > last_chunk


# --- several modes, subgraphs, errors -----------------------------------------------------------------------


async def test_several_modes_at_once_arrive_in_the_order_they_happened(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(
        client,
        thread_id,
        "tokens",
        input=human("hi"),
        config=_tokens(3),
        stream_mode=["values", "updates", "custom", "messages-tuple"],
    )

    assert _names(parts) == [
        "metadata",
        "values",
        "custom",
        *["messages"] * 5,
        "custom",
        "updates",
        "values",
    ]
    final = as_dict(parts[-1].data)["messages"]
    assert [(m["type"], m["content"]) for m in final] == [("human", "hi"), ("ai", _answer(3))]
    assert as_dict(parts[-2].data)["talk"]["messages"][0]["content"] == _answer(3)


async def test_stream_subgraphs_names_subgraph_events_by_namespace(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(
        client,
        thread_id,
        "nested",
        input={"count": 0},
        stream_mode=["updates", "tasks"],
        stream_subgraphs=True,
    )

    inner_start = next(p.data for p in parts if p.event == "tasks" and p.data.get("name") == "inner")
    namespace = f"inner:{inner_start['id']}"
    updates = [(p.event, p.data) for p in parts if p.event.startswith("updates")]
    assert updates == [
        (f"updates|{namespace}", {"a": {"count": 1, "trail": ["a"]}}),
        (f"updates|{namespace}", {"b": {"count": 2, "trail": ["b"]}}),
        ("updates", {"inner": {"count": 2, "trail": ["a", "b"]}}),
        ("updates", {"after": {"trail": ["after"]}}),
    ]
    inner_tasks = [p.data["name"] for p in parts if p.event == f"tasks|{namespace}"]
    assert inner_tasks == ["a", "a", "b", "b"]
    assert {p.event.split("|")[0] for p in parts} == {"metadata", "updates", "tasks"}


async def test_without_stream_subgraphs_only_the_root_graph_streams(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "nested", input={"count": 0}, stream_mode=["updates", "tasks"])

    assert all("|" not in name for name in _names(parts))
    assert [p.data["name"] for p in parts if p.event == "tasks"] == ["inner", "inner", "after", "after"]


async def test_a_failing_run_sends_an_error_event_last(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    parts = await _stream(client, thread_id, "failing", input={}, stream_mode=["updates", "debug"])

    assert parts[0].event == "metadata"
    assert parts[-1] == StreamPart("error", {"error": "ValueError", "message": "boom"}, None)
    assert _names(parts).count("error") == 1
    assert "end" not in _names(parts)
    assert (await client.runs.get(thread_id, parts[0].data["run_id"]))["status"] == "error"


async def test_a_stateless_run_streams_messages(client: LangGraphClient) -> None:
    parts = await _stream(
        client, None, "tokens", input=human("hi"), config=_tokens(2), stream_mode="messages"
    )

    assert _names(parts) == ["metadata", "messages/metadata", *["messages/partial"] * 3]
    assert as_dict(cast(list[Any], parts[-1].data)[0])["content"] == "tok0 tok1"


# --- unknown modes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/threads/{thread_id}/runs/stream", "/threads/{thread_id}/runs"])
async def test_an_unknown_stream_mode_is_refused_and_nothing_is_written(
    client: LangGraphClient, http: httpx.AsyncClient, path: str
) -> None:
    thread_id = await new_thread(client)
    before = await client.threads.get(thread_id)
    body = {"assistant_id": "counter", "input": {"count": 0}, "stream_mode": ["values", "no-such-mode"]}

    r = await http.post(path.format(thread_id=thread_id), json=body)

    assert r.status_code == 422, r.text
    assert "no-such-mode" in r.text
    assert await client.runs.list(thread_id) == []
    assert await client.threads.get(thread_id) == before


async def test_an_unknown_stream_mode_on_a_stateless_stream_creates_no_thread(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    threads = await client.threads.count()

    r = await http.post(
        "/runs/stream", json={"assistant_id": "counter", "input": {}, "stream_mode": "no-such-mode"}
    )

    assert r.status_code == 422, r.text
    assert "no-such-mode" in r.text
    assert await client.threads.count() == threads


# --- framing: headers, heartbeats, ids ----------------------------------------------------------------------


async def test_an_idle_stream_sends_heartbeat_comments(server: Server, client: LangGraphClient) -> None:
    """A step that sleeps 1 s with a 0.2 s keep-alive: the client sees comments while nothing happens."""
    thread_id = await new_thread(client)
    body = {"assistant_id": "slow", "input": {"delay": 1.0, "steps": 1}, "stream_mode": "updates"}

    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        reader = SseReader(response)
        first = await reader.event()
        assert first is not None
        assert first.event == "metadata"
        assert await reader.comment() == ": heartbeat"
        rest = await reader.rest()

    assert [e.event for e in rest] == ["updates"]
    assert rest[0].data == {"step": {"done": [0]}}


async def test_lines_end_with_crlf(server: Server, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    body = {"assistant_id": "counter", "input": {"count": 0}, "stream_mode": "updates"}

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.post(f"/threads/{thread_id}/runs/stream", json=body)

    assert r.content.startswith(b"event: metadata\r\ndata: {")
    assert b"\r\n\r\nevent: updates\r\ndata: " in r.content
    assert r.content.endswith(b"\r\n\r\n")


async def test_event_ids_are_sent_only_for_resumable_streams(server: Server, client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    body: dict[str, Any] = {
        "assistant_id": "counter",
        "input": {"count": 0},
        "stream_mode": ["updates", "values"],
    }
    path = f"/threads/{thread_id}/runs/stream"

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async with http.stream("POST", path, json=body) as response:
            plain = await SseReader(response).rest()
        async with http.stream("POST", path, json={**body, "stream_resumable": True}) as response:
            resumable = await SseReader(response).rest()

    assert [e.event for e in plain] == [e.event for e in resumable]
    assert len(plain) == 6
    assert [e.id for e in plain] == [None] * len(plain)
    ids = [e.id for e in resumable]
    assert all(i is not None and EVENT_ID.match(i) for i in ids), ids
    order = [id_order(cast(str, i)) for i in ids]
    assert order == sorted(order)
    assert len(set(order)) == len(order)


# --- resuming -----------------------------------------------------------------------------------------------


async def test_a_dropped_resumable_stream_resumes_from_last_event_id_losing_nothing(
    server: Server, client: LangGraphClient
) -> None:
    """Drop the connection after five events of a run that is still streaming tokens, rejoin with the last id
    seen: what came before and after is exactly what a full replay (``-1``, read by the sync SDK) gives."""
    thread_id = await new_thread(client)
    body = {
        "assistant_id": "tokens",
        "input": human("hi"),
        "config": _tokens(12, delay_s=0.1),
        "stream_mode": ["messages-tuple", "custom", "updates"],
        "stream_resumable": True,
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
            join_path = response.headers["location"]
            before = await SseReader(response).events(5)
        # The connection is closed: the run goes on (on_disconnect defaults to continue).
        last_id = before[-1].id
        assert last_id is not None
        async with http.stream("GET", join_path, headers={"Last-Event-ID": last_id}) as response:
            assert response.status_code == 200
            after = await SseReader(response).rest()
    run_id = before[0].data["run_id"]
    assert join_path == f"/threads/{thread_id}/runs/{run_id}/stream"

    def replay() -> list[StreamPart]:
        with get_sync_client(url=server.url, api_key=None, timeout=30) as sync_client:
            return list(sync_client.runs.join_stream(thread_id, run_id, last_event_id="-1"))

    full = await asyncio.to_thread(replay)

    assert [e.event for e in before] == ["metadata", "custom", "messages", "messages", "messages"]
    assert any(e.event == "messages" for e in after)  # the drop happened while tokens were streaming
    assert [(e.id, e.event, e.data) for e in before + after] == [(p.id, p.event, p.data) for p in full]
    contents = [p.data[0]["content"] for p in full if p.event == "messages"]
    assert "".join(contents) == _answer(12)
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"


async def test_rejoining_a_finished_run_with_its_last_event_id_gives_nothing_more(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = await new_thread(client)
    body = {
        "assistant_id": "counter",
        "input": {"count": 0},
        "stream_mode": "updates",
        "stream_resumable": True,
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
            join_path = response.headers["location"]
            events = await SseReader(response).rest()
        last, middle = events[-1].id, events[1].id
        assert last is not None
        assert middle is not None
        async with http.stream("GET", join_path, headers={"Last-Event-ID": last}) as response:
            nothing = await SseReader(response).rest()
        async with http.stream("GET", join_path, headers={"Last-Event-ID": middle}) as response:
            tail = await SseReader(response).rest()

    assert nothing == []
    assert tail == events[2:]


@pytest.mark.parametrize("bad_id", ["not-an-id", "1-2-3", "12-x", "1.5-0"])
async def test_a_malformed_last_event_id_is_ignored_as_the_official_server_ignores_it(
    client: LangGraphClient, http: httpx.AsyncClient, bad_id: str
) -> None:
    """As if no header was sent: the join follows the run from now on, and this one has ended."""
    thread_id = await new_thread(client)
    parts = await _stream(
        client, thread_id, "counter", input={"count": 0}, stream_mode="updates", stream_resumable=True
    )
    run_id = parts[0].data["run_id"]

    r = await http.get(f"/threads/{thread_id}/runs/{run_id}/stream", headers={"Last-Event-ID": bad_id})

    assert r.status_code == 200, r.text
    assert r.text.strip() == ""
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"
    replay = [p async for p in client.runs.join_stream(thread_id, run_id, last_event_id="-1")]
    assert [(p.event, p.data) for p in replay] == [(p.event, p.data) for p in parts]


async def test_a_last_event_id_of_another_run_is_refused(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    first_thread, second_thread = await new_thread(client), await new_thread(client)
    kwargs: dict[str, Any] = {"input": {"count": 0}, "stream_mode": "updates", "stream_resumable": True}
    first = await _stream(client, first_thread, "counter", **kwargs)
    second = await _stream(client, second_thread, "counter", **kwargs)
    foreign_id = first[1].id
    assert foreign_id is not None
    assert foreign_id not in {p.id for p in second}
    second_run = second[0].data["run_id"]

    r = await http.get(
        f"/threads/{second_thread}/runs/{second_run}/stream", headers={"Last-Event-ID": foreign_id}
    )

    assert r.status_code == 422, r.text
    assert foreign_id in r.text
    replay = [p async for p in client.runs.join_stream(second_thread, second_run, last_event_id="-1")]
    assert replay == second


# --- a client that goes away --------------------------------------------------------------------------------


async def _leave_after_first_update(parts: AsyncIterator[StreamPart]) -> str:
    """Read until the first ``updates`` event, then close the stream as a client leaving; the run id."""
    run_id = ""
    async with contextlib.aclosing(cast(AsyncGenerator[StreamPart, None], parts)) as stream:
        async for part in stream:
            if part.event == "metadata":
                run_id = part.data["run_id"]
            if part.event == "updates":
                break
    assert run_id
    return run_id


async def test_by_default_a_run_continues_when_its_client_leaves(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    run_id = await _leave_after_first_update(
        client.runs.stream(thread_id, "slow", input={"delay": 0.2, "steps": 6}, stream_mode="updates")
    )

    out = as_dict(await client.runs.join(thread_id, run_id))
    assert out["done"] == list(range(6))
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"


async def test_on_disconnect_cancel_interrupts_the_run_when_its_client_leaves(
    client: LangGraphClient,
) -> None:
    thread_id = await new_thread(client)

    run_id = await _leave_after_first_update(
        client.runs.stream(
            thread_id,
            "slow",
            input={"delay": 0.3, "steps": 30},
            stream_mode="updates",
            on_disconnect="cancel",
        )
    )

    run = await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda r: r["status"] not in ("pending", "running"),
        what="the run to stop after its client left",
    )
    assert run["status"] == "interrupted"
    done = as_dict((await client.threads.get_state(thread_id))["values"])["done"]
    assert 1 <= len(done) < 30


async def test_a_join_stream_of_an_unknown_run_is_404(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = await new_thread(client)

    r = await http.get(f"/threads/{thread_id}/runs/{uuid4()}/stream", headers={"Last-Event-ID": "-1"})

    assert r.status_code == 404, r.text
