"""The thread-stream protocol the SDK's ``client.threads.stream`` speaks (``POST /threads/{id}/commands``
and ``POST /threads/{id}/stream/events``, or its WebSocket), driven by langgraph-sdk against a real
server in both modes.

Every expectation here was first observed on the official server (``langgraph dev``, langgraph-api
0.16.7): run it there with ``GRAPHRUN_ACCEPTANCE_OFFICIAL_CLI=<venv>/bin/langgraph`` and ``-k embedded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from langgraph_sdk.client import LangGraphClient

from graphrun.types import Json
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "protocol.json"

Event = Any  # the SDK's protocol event dicts


def _root_lifecycle(event: Event) -> str | None:
    params = event.get("params") or {}
    if event.get("method") != "lifecycle" or params.get("namespace"):
        return None
    phase: str | None = (params.get("data") or {}).get("event")
    return phase


async def _events_until(
    events: AsyncIterator[Event], phases: set[str], *, skip: int = 0, timeout_s: float = 30.0
) -> list[Event]:
    """Events as the SDK yields them, up to and including a root lifecycle event in ``phases`` (after
    ``skip`` earlier ones: a thread's stream replays the thread's earlier runs first)."""
    seen: list[Event] = []

    async def read() -> None:
        left = skip
        async for event in events:
            seen.append(event)
            if _root_lifecycle(event) in phases:
                if left == 0:
                    return
                left -= 1

    try:
        await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"no root lifecycle {sorted(phases)} within {timeout_s}s; saw {seen}") from None
    return seen


def _methods(events: list[Event]) -> list[str]:
    return [e["method"] for e in events]


def _lifecycles(events: list[Event]) -> list[str]:
    return [p for p in map(_root_lifecycle, events) if p is not None]


async def _command(http: httpx.AsyncClient, thread_id: str, body: Any) -> httpx.Response:
    return await http.post(f"/threads/{thread_id}/commands", content=orjson.dumps(body))


# ---------------------------------------------------------------- a run, start to end


async def test_a_run_streams_lifecycle_values_and_message_tokens(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="chats") as thread:
        started = await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        assert uuid.UUID(started["run_id"])
        events = await _events_until(thread.events, {"completed", "failed"})
        output = await thread.output

    assert _lifecycles(events) == ["running", "completed"]
    assert events[0]["params"]["data"] == {"event": "running", "graph_name": "chats"}
    assert {"values", "messages"} <= set(_methods(events))
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), "numbered from 1 on each connection"
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events:
        assert event["type"] == "event"
        assert isinstance(event["params"]["timestamp"], int)
        assert event["params"]["namespace"] == []

    deltas = [
        e["params"]["data"]["delta"]
        for e in events
        if e["method"] == "messages" and e["params"]["data"]["event"] == "content-block-delta"
    ]
    assert "".join(d.get("text", "") for d in deltas) == "hello there world"
    assert len(deltas) > 1, "the tokens come one by one"
    # The v3 stream hands the model's message over as content blocks, on the official server too.
    assert output["messages"][0]["content"] == "hi"
    assert [b["text"] for b in output["messages"][1]["content"]] == ["hello there world"]


async def test_a_second_stream_replays_the_same_events_with_the_same_ids(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="chats") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        first = await _events_until(thread.events, {"completed"})
        second = await _events_until(thread.events, {"completed"})
    assert [(e["seq"], e["event_id"], e["method"]) for e in first] == [
        (e["seq"], e["event_id"], e["method"]) for e in second
    ]


async def test_since_skips_what_the_client_already_has(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    async with client.threads.stream(assistant_id="chats") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        events = await _events_until(thread.events, {"completed"})
    cut = events[2]["seq"]
    body = {"channels": ["values", "messages", "lifecycle"], "since": cut}
    async with http.stream("POST", f"/threads/{thread.thread_id}/stream/events", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = await _sse_events(response, until_phase="completed")
    assert [f["seq"] for f in frames] == [e["seq"] for e in events if e["seq"] > cut]


async def _sse_events(response: httpx.Response, *, until_phase: str) -> list[Event]:
    """SSE frames read as a client reads them: ``event:``, ``data:`` and ``id:`` lines, blank-line ended."""
    frames: list[Event] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                event = orjson.loads(fields["data"])
                assert fields.get("event") == event["method"]
                assert fields.get("id") == str(event["seq"])
                frames.append(event)
                if _root_lifecycle(event) == until_phase:
                    return frames
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")
    return frames


async def test_a_failing_run_ends_failed_with_its_error(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="fails") as thread:
        await thread.run.start(input={})
        events = await _events_until(thread.events, {"completed", "failed"})
        with pytest.raises(RuntimeError, match="failed on purpose"):
            await thread.output
    assert _lifecycles(events) == ["running", "failed"]
    assert "failed on purpose" in events[-1]["params"]["data"]["error"]


# ---------------------------------------------------------------- human in the loop


async def test_an_interrupt_is_requested_and_answered_through_the_stream(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="asks") as thread:
        await thread.run.start(input={})
        events = await _events_until(thread.events, {"interrupted"})
        requested = [e for e in events if e["method"] == "input.requested"]
        assert len(requested) == 1
        data = requested[0]["params"]["data"]
        assert data["payload"] == {"question": "approve a plan?"}
        assert _lifecycles(events) == ["running", "interrupted"]
        assert not any(
            "__interrupt__" in (e["params"]["data"] or {}) for e in events if e["method"] == "values"
        )

        await eventually(lambda: _value(thread.interrupted), bool, what="the SDK to see the interrupt")
        assert [i["interrupt_id"] for i in thread.interrupts] == [data["interrupt_id"]]
        await thread.run.respond("yes")
        output = await asyncio.wait_for(thread.output, 30)
    assert output == {"draft": "a plan", "answer": "yes"}


async def test_the_sdk_sees_an_interrupt_as_it_sees_it_on_the_official_server(
    client: LangGraphClient,
) -> None:
    """langgraph-sdk 0.4.14 against langgraph-api 0.16.7: ``thread.interrupts[i]["value"]`` is None (the
    SDK reads ``value``; the server sends ``payload``), and ``thread.output`` does not resolve at an
    interrupt (no ``completed`` is sent), only once the answered run has completed."""
    async with client.threads.stream(assistant_id="asks") as thread:
        await thread.run.start(input={})
        events = await _events_until(thread.events, {"interrupted", "completed", "failed"})
        await eventually(lambda: _value(thread.interrupted), bool, what="the SDK to see the interrupt")

        [requested] = [e["params"]["data"] for e in events if e["method"] == "input.requested"]
        assert set(requested) == {"interrupt_id", "payload"}
        assert [(i["interrupt_id"], i["value"]) for i in thread.interrupts] == [
            (requested["interrupt_id"], None)
        ]
        assert _lifecycles(events)[-1] == "interrupted"
        output = asyncio.ensure_future(_output(thread))  # had it resolved at the interrupt: without "answer"
        await thread.run.respond("yes")
        assert await asyncio.wait_for(output, 30) == {"draft": "a plan", "answer": "yes"}


async def _output(thread: Any) -> Any:
    return await thread.output


async def _value(value: Any) -> Any:
    return value


async def test_responding_to_an_unknown_interrupt_is_refused(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    async with client.threads.stream(assistant_id="asks") as thread:
        await thread.run.start(input={})
        await _events_until(thread.events, {"interrupted"})
    answer = await _command(
        http,
        thread.thread_id,
        {
            "id": 7,
            "method": "input.respond",
            "params": {"interrupt_id": "nope", "namespace": [], "response": 1},
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["type"], body["id"], body["error"]) == ("error", 7, "no_such_interrupt")
    runs = await client.runs.list(thread.thread_id)
    assert len(runs) == 1, "nothing was started"


async def test_a_run_forks_from_a_checkpoint(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="asks") as thread:
        await thread.run.start(input={})
        await _events_until(thread.events, {"interrupted"})
        await eventually(lambda: _value(thread.interrupted), bool, what="the SDK to see the interrupt")
        await thread.run.respond("yes")
        await asyncio.wait_for(thread.output, 30)

    history = await client.threads.get_history(thread.thread_id)
    before_ask = next(s for s in history if s["next"] == ["ask"])
    async with client.threads.stream(thread.thread_id, assistant_id="asks") as again:
        config = {"configurable": {"checkpoint_id": before_ask["checkpoint"]["checkpoint_id"]}}
        await again.run.start(input=None, config=config)
        events = await _events_until(again.events, {"interrupted"}, skip=1)
    assert _lifecycles(events) == ["running", "interrupted", "running", "completed", "running", "interrupted"]
    state = await eventually(
        lambda: client.threads.get_state(thread.thread_id),
        lambda s: bool(s["interrupts"]),
        what="the forked run to stop at the question again",
    )
    assert state["next"] == ["ask"]
    assert "answer" not in state["values"]
    assert state["checkpoint"]["checkpoint_id"] != before_ask["checkpoint"]["checkpoint_id"]


# ---------------------------------------------------------------- cancel


async def test_cancelling_a_run_ends_its_stream_interrupted(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="sleepy") as thread:
        started = await thread.run.start(input={"seconds": 30})
        events = thread.events
        await eventually(
            lambda: client.runs.get(thread.thread_id, started["run_id"]),
            lambda r: r["status"] == "running",
            what="the run to start",
        )
        await client.runs.cancel(thread.thread_id, started["run_id"])
        seen = await _events_until(events, {"interrupted", "completed", "failed"})
    assert _lifecycles(seen) == ["running", "interrupted"]


# ---------------------------------------------------------------- what a client gets wrong


@pytest.mark.parametrize(
    "body",
    [{"method": "run.start"}, {"id": "1", "method": "run.start"}, {"id": 1}, [1, 2]],
    ids=["no id", "string id", "no method", "not an object"],
)
async def test_a_malformed_command_is_a_400_error_envelope(http: httpx.AsyncClient, body: Any) -> None:
    answer = await _command(http, str(uuid.uuid4()), body)
    assert answer.status_code == 400
    assert answer.json()["type"] == "error"
    assert answer.json()["error"] == "invalid_argument"


async def test_a_command_that_is_not_json_is_a_400(http: httpx.AsyncClient) -> None:
    answer = await http.post(f"/threads/{uuid.uuid4()}/commands", content=b"{nope")
    assert answer.status_code == 400
    assert "JSON" in answer.text


async def test_an_unknown_command_is_named_in_the_error(http: httpx.AsyncClient) -> None:
    answer = await _command(http, str(uuid.uuid4()), {"id": 3, "method": "state.get", "params": {}})
    assert answer.status_code == 200
    assert answer.json() == {
        "type": "error",
        "id": 3,
        "error": "unknown_command",
        "message": "Unknown protocol command: state.get",
    }


async def test_run_start_without_an_assistant_is_refused_and_writes_nothing(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = str(uuid.uuid4())
    answer = await _command(http, thread_id, {"id": 1, "method": "run.start", "params": {"input": {}}})
    assert answer.json()["error"] == "invalid_argument"
    missing = await http.get(f"/threads/{thread_id}")
    assert missing.status_code == 404


async def test_run_start_with_an_unknown_assistant_is_an_error_envelope(http: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    params = {"assistant_id": "no-such-graph", "input": {}}
    answer = await _command(http, thread_id, {"id": 1, "method": "run.start", "params": params})
    assert answer.status_code == 200
    assert answer.json()["type"] == "error"
    assert (await http.get(f"/threads/{thread_id}")).status_code == 404


async def test_a_stream_without_channels_or_with_an_unknown_one_is_a_400(http: httpx.AsyncClient) -> None:
    bodies: list[dict[str, Any]] = [{}, {"channels": []}, {"channels": ["values", "nonsense"]}]
    for body in bodies:
        answer = await http.post(f"/threads/{uuid.uuid4()}/stream/events", json=body)
        assert answer.status_code == 400, body
        assert "channels" in answer.json()["detail"]


async def test_commands_that_need_a_live_session_say_there_is_none(http: httpx.AsyncClient) -> None:
    answer = await _command(http, str(uuid.uuid4()), {"id": 5, "method": "agent.getTree", "params": {}})
    assert answer.json()["error"] == "no_such_run"


async def test_closing_a_stream_leaves_the_run_going(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = str(uuid.uuid4())
    params = {"assistant_id": "sleepy", "input": {"seconds": 1}}
    started = (await _command(http, thread_id, {"id": 1, "method": "run.start", "params": params})).json()
    assert started["type"] == "success"
    run_id = started["result"]["run_id"]
    with contextlib.suppress(httpx.ReadTimeout):
        async with http.stream(
            "POST", f"/threads/{thread_id}/stream/events", json={"channels": ["lifecycle"]}, timeout=0.5
        ) as response:
            async for _ in response.aiter_lines():
                break
    run = await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda r: r["status"] not in ("pending", "running"),
        what="the run to end",
    )
    assert run["status"] == "success"


# ---------------------------------------------------------------- runs started the older way


async def test_a_run_made_with_runs_wait_shows_on_the_thread_stream(client: LangGraphClient) -> None:
    """graphrun goes further here: the official server's thread stream shows nothing of a run made with
    ``runs.wait``; graphrun translates every run on the thread, however it was started."""
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "asks", input={})
    async with client.threads.stream(thread["thread_id"], assistant_id="asks") as stream:
        events = await _events_until(stream.events, {"interrupted", "completed", "failed"})
    assert _lifecycles(events) == ["running", "interrupted"]
    assert events[0]["params"]["data"]["graph_name"] == "asks"
    requested = [e for e in events if e["method"] == "input.requested"]
    assert [r["params"]["data"]["payload"] for r in requested] == [{"question": "approve a plan?"}]
    values = [e["params"]["data"] for e in events if e["method"] == "values"]
    assert values[-1] == {"draft": "a plan"}


async def test_an_explicit_thread_reattaches_to_its_finished_output(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    messages: Any = [{"role": "user", "content": "x"}]
    await client.runs.wait(thread["thread_id"], "chats", input={"messages": messages})
    async with client.threads.stream(thread["thread_id"], assistant_id="chats") as stream:
        output = await asyncio.wait_for(stream.output, 30)
    assert [m["type"] for m in output["messages"]] == ["human", "ai"]


# ---------------------------------------------------------------- the WebSocket transport


async def test_over_a_websocket_a_run_streams_the_same_events_as_over_sse(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="chats", transport="websocket") as thread:
        await thread.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
        seen = await _events_until(thread.events, {"completed", "failed"})
        output = await thread.output
    # The subscription's answer reaches the SDK's event iterator too (it has no ``method``), as it does
    # from the official server: the SDK hands it over and ignores it.
    assert [(f["type"], f["id"]) for f in seen if f.get("type") != "event"] == [("success", 1)]
    over_socket = [f for f in seen if f.get("type") == "event"]
    assert _lifecycles(over_socket) == ["running", "completed"]
    assert [b["text"] for b in output["messages"][1]["content"]] == ["hello there world"]
    async with client.threads.stream(thread.thread_id, assistant_id="chats") as again:
        over_sse = await _events_until(again.events, {"completed"})
    assert [(e["seq"], e["event_id"], e["method"]) for e in over_socket] == [
        (e["seq"], e["event_id"], e["method"]) for e in over_sse
    ], "the same events, ids and cursors on both transports"


async def test_over_a_websocket_an_interrupt_is_requested_and_answered(client: LangGraphClient) -> None:
    async with client.threads.stream(assistant_id="asks", transport="websocket") as thread:
        await thread.run.start(input={})
        events = await _events_until(thread.events, {"interrupted"})
        assert [e["params"]["data"]["payload"] for e in events if e.get("method") == "input.requested"] == [
            {"question": "approve a plan?"}
        ]
        await eventually(lambda: _value(thread.interrupted), bool, what="the SDK to see the interrupt")
        await thread.run.respond("yes")
        output = await asyncio.wait_for(thread.output, 30)
    assert output == {"draft": "a plan", "answer": "yes"}


async def _send(socket: Any, command_id: int, method: str, params: Json) -> None:
    await socket.send(orjson.dumps({"id": command_id, "method": method, "params": params}).decode())


def _socket_url(target: Any, thread_id: str) -> str:
    return str(target.url).replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"


async def _frames_until(socket: Any, done: Any) -> list[Json]:
    """The frames a socket receives until ``done(frame)`` says so (30 s at most)."""
    frames: list[Json] = []

    async def read() -> None:
        async for raw in socket:
            frames.append(orjson.loads(raw))
            if done(frames[-1]):
                return

    try:
        await asyncio.wait_for(read(), 30)
    except TimeoutError:
        raise AssertionError(f"the socket did not say it within 30s; saw {frames}") from None
    return frames


async def test_a_socket_takes_commands_and_subscriptions_with_a_cursor(target: Any) -> None:
    """The official WebSocket route's own protocol, frame by frame: every frame is a command answered by
    one frame; events flow for each subscription, from after its ``since``."""
    thread_id = str(uuid.uuid4())
    async with websockets.connect(_socket_url(target, thread_id)) as socket:
        await _send(socket, 1, "subscription.subscribe", {})
        refused = orjson.loads(await socket.recv())
        assert (refused["type"], refused["id"], refused["error"]) == ("error", 1, "invalid_argument")

        params = {"channels": ["lifecycle", "values"]}
        await _send(socket, 2, "subscription.subscribe", params)
        subscribed = orjson.loads(await socket.recv())
        assert (subscribed["type"], subscribed["id"]) == ("success", 2)
        subscription = subscribed["result"]["subscription_id"]

        start = {"assistant_id": "chats", "input": {"messages": [{"role": "user", "content": "hi"}]}}
        await _send(socket, 3, "run.start", start)
        frames = await _frames_until(socket, lambda f: _root_lifecycle(f) == "completed")
        answers = [f for f in frames if f["type"] != "event"]
        assert [(a["type"], a["id"]) for a in answers] == [("success", 3)]
        assert uuid.UUID(answers[0]["result"]["run_id"])
        events = [f for f in frames if f["type"] == "event"]
        assert {e["method"] for e in events} == {"lifecycle", "values"}
        assert _lifecycles(events) == ["running", "completed"]

        for command in (
            {"id": 4, "method": "subscription.unsubscribe", "params": {"subscription_id": subscription}},
            {"id": 5, "method": "subscription.unsubscribe", "params": {"subscription_id": subscription}},
            {"id": "six", "method": "run.start"},
            {"id": 7, "method": "state.get", "params": {}},
        ):
            await socket.send(orjson.dumps(command).decode())
        await socket.send("{nope")
        answers = [orjson.loads(await socket.recv()) for _ in range(5)]
        assert [(a["type"], a["id"], a.get("error")) for a in answers] == [
            ("success", 4, None),
            ("error", 5, "no_such_subscription"),
            ("error", "six", "invalid_argument"),
            ("error", 7, "unknown_command"),
            ("error", None, "invalid_argument"),
        ]

    cut = events[1]["seq"]
    async with websockets.connect(_socket_url(target, thread_id)) as socket:
        params = {"channels": ["lifecycle", "values"], "since": cut}
        await _send(socket, 1, "subscription.subscribe", params)
        frames = await _frames_until(socket, lambda f: _root_lifecycle(f) == "completed")
    replayed = [f for f in frames if f["type"] == "event"]
    assert [(e["seq"], e["event_id"]) for e in replayed] == [
        (e["seq"], e["event_id"]) for e in events if e["seq"] > cut
    ]
