"""The example agent (examples/agent) on its own langgraph.json, in both modes, driven as the standard chat
UI drives it: LangChain's human-in-the-loop approvals answered with the chat UI's exact bodies.

An email request streams the model's tool call token by token, then the run stops before anything is sent
and the thread waits as ``interrupted`` with LangChain's ``HumanInTheLoopMiddleware`` request
(``action_requests`` and ``review_configs``). Each decision (approve, edit, reject) is sent on its own
thread as the UI sends it, ``{"input": {}, "command": {"resume": {"decisions": [...]}}}``, and must leave the
right messages and outbox: ``send_email`` files what it sends in the store under ``("outbox", <thread
id>)``, so "sent exactly once" and "never sent" are checked from the outside. The servers run the offline
model: the provider variables are emptied.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamMode, StreamPart

from tests.acceptance._support import EXAMPLE_CONFIG, OFFLINE_ENV
from tests.harness.sdk import as_dict, body_text, sse_events, status_of

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = EXAMPLE_CONFIG
SERVER_ENV = OFFLINE_ENV
STREAM_MODES: list[StreamMode] = ["values", "messages-tuple"]

EMAIL_REQUEST = "Send an email to ann@example.com about the launch saying We ship on Friday."
DRAFT = {"to": "ann@example.com", "subject": "the launch", "body": "We ship on Friday."}
EDITED = {"to": "team@example.com", "subject": "Launch date", "body": "We ship on Monday."}
EDIT_NOTICE = "Note: a human reviewer replaced this tool call before it ran."


async def _stream(client: LangGraphClient, thread_id: str, **run: Any) -> list[StreamPart]:
    """Every event of one streamed ``agent`` run on the thread, in order."""
    return [part async for part in client.runs.stream(thread_id, "agent", stream_mode=STREAM_MODES, **run)]


def _model_chunks(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The model's token chunks: ``messages`` events ([chunk, metadata]) from the ``model`` node."""
    chunks: list[dict[str, Any]] = []
    for name, data in events:
        if name != "messages":
            continue
        chunk, metadata = data
        if metadata["langgraph_node"] == "model" and chunk["type"] == "AIMessageChunk":
            chunks.append(chunk)
    return chunks


async def _outbox(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    """The emails send_email filed for the thread: one item per email actually sent."""
    found = await client.store.search_items(["outbox", thread_id], limit=100)
    return [{k: as_dict(item["value"])[k] for k in DRAFT} for item in found["items"]]


async def _paused_email_thread(client: LangGraphClient) -> tuple[str, list[StreamPart]]:
    """A new thread whose streamed email request stopped for review: its id and the run's events."""
    thread_id = (await client.threads.create())["thread_id"]
    events = await _stream(
        client, thread_id, input={"messages": [{"role": "user", "content": EMAIL_REQUEST}]}
    )
    return thread_id, events


async def test_an_email_request_streams_its_tool_call_then_waits_for_a_human(client: LangGraphClient) -> None:
    """Tokens stream, the run succeeds, and the thread is interrupted with LangChain's human-in-the-loop
    request for the email; nothing has been sent."""
    thread_id, events = await _paused_email_thread(client)

    assert events[0].event == "metadata"
    chunks = _model_chunks([(e.event, e.data) for e in events])
    assert len(chunks) > 1  # streamed in pieces, not one message at the end
    pieces = [piece for chunk in chunks for piece in chunk["tool_call_chunks"]]
    assert pieces[0]["name"] == "send_email"
    assert json.loads("".join(piece["args"] for piece in pieces)) == DRAFT
    run = await client.runs.get(thread_id, events[0].data["run_id"])
    assert run["status"] == "success"

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    [[pending]] = as_dict(thread["interrupts"]).values()
    assert pending["value"] == {
        "action_requests": [
            {
                "name": "send_email",
                "args": DRAFT,
                "description": "The assistant wants to send this email. Approve, edit or reject it.",
            }
        ],
        "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}],
    }
    assert events[-1].event == "values"
    assert [i["value"] for i in events[-1].data["__interrupt__"]] == [pending["value"]]
    assert await _outbox(client, thread_id) == []


@pytest.mark.parametrize(
    ("decision", "sent", "tool_result"),
    [
        ({"type": "approve"}, [DRAFT], "Email sent to ann@example.com with the subject 'the launch'"),
        (
            {"type": "edit", "edited_action": {"name": "send_email", "args": EDITED}},
            [EDITED],
            "Email sent to team@example.com with the subject 'Launch date'",
        ),
        (
            {"type": "reject", "message": "the date is not final"},
            [],
            "User rejected the tool call for `send_email` with reason: the date is not final",
        ),
    ],
    ids=["approve", "edit", "reject"],
)
async def test_each_decision_sent_as_the_chat_ui_sends_it_resumes_to_the_right_outcome(
    client: LangGraphClient,
    http: httpx.AsyncClient,
    decision: dict[str, Any],
    sent: list[dict[str, str]],
    tool_result: str,
) -> None:
    """Approve sends the model's draft once, edit sends the reviewer's once, reject sends nothing; the model's
    streamed answer reports what happened and the thread is idle again."""
    thread_id, _ = await _paused_email_thread(client)
    body = {
        "assistant_id": "agent",
        "input": {},
        "command": {"resume": {"decisions": [decision]}},
        "stream_mode": STREAM_MODES,
    }

    response = await http.post(f"/threads/{thread_id}/runs/stream", json=body)

    assert response.status_code == 200, response.text
    events = [(name, json.loads(data)) for _, name, data in sse_events(response.text.splitlines())]
    run = await client.runs.get(thread_id, events[0][1]["run_id"])
    assert run["status"] == "success"
    thread = await client.threads.get(thread_id)
    assert (thread["status"], thread["interrupts"]) == ("idle", {})
    messages = as_dict(thread["values"])["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[2]["content"].removeprefix(EDIT_NOTICE).strip().endswith(tool_result)
    assert messages[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]
    assert messages[2]["status"] == ("error" if decision["type"] == "reject" else "success")
    answer = messages[-1]
    assert tool_result in answer["content"]
    assert not answer["tool_calls"]
    tokens = [chunk["content"] for chunk in _model_chunks(events) if chunk["content"]]
    assert len(tokens) > 1
    assert "".join(tokens) == answer["content"]
    assert await _outbox(client, thread_id) == sent


async def test_an_approval_through_runs_wait_with_an_empty_input(client: LangGraphClient) -> None:
    thread_id, _ = await _paused_email_thread(client)

    output = await client.runs.wait(
        thread_id, "agent", input={}, command={"resume": {"decisions": [{"type": "approve"}]}}
    )

    assert as_dict(output)["messages"][-1]["content"].startswith("Done. Email sent to ann@example.com")
    assert await _outbox(client, thread_id) == [DRAFT]


async def test_mark_as_resolved_is_accepted_and_sends_nothing(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """The chat UI's "mark as resolved": ``{"input": {}, "command": {"goto": "__end__"}}``."""
    thread_id, _ = await _paused_email_thread(client)
    body = {"assistant_id": "agent", "input": {}, "command": {"goto": "__end__"}}

    response = await http.post(f"/threads/{thread_id}/runs/wait", json=body)

    assert response.status_code == 200, response.text
    assert "__error__" not in response.json()
    assert await _outbox(client, thread_id) == []


@pytest.mark.parametrize(
    ("resume", "problem"),
    [
        ({"decisions": [{"type": "send it"}]}, "has type 'send it'; allowed: approve, edit, reject"),
        ({"decisions": [{"type": "respond", "message": "done"}]}, "has type 'respond'"),
        ({"decisions": []}, "0 decision(s) for 1 action request(s)"),
        ({"decision": "approve"}, "no 'decisions' list"),
        ({"decisions": [{"type": "edit", "args": EDITED}]}, "needs 'edited_action' with a 'name'"),
        ({"decisions": [{"type": "edit", "edited_action": {"name": "send_email"}}]}, "edited_action.args"),
    ],
    ids=[
        "unknown-type",
        "type-not-allowed",
        "too-few",
        "not-decisions",
        "edit-without-action",
        "edit-no-args",
    ],
)
async def test_a_decision_that_does_not_fit_the_request_is_refused_and_the_email_stays_pending(
    client: LangGraphClient, resume: dict[str, Any], problem: str
) -> None:
    """A resume that does not answer the request gets a 422 and starts no run (inside the graph it would
    fail the run and stay as the interrupt's answer); the same request can still be answered, and
    approving then sends the email once."""
    thread_id, _ = await _paused_email_thread(client)
    before = await client.threads.get(thread_id)

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.runs.wait(thread_id, "agent", input={}, command={"resume": resume})

    assert status_of(excinfo.value) == 422, body_text(excinfo.value)
    assert problem in body_text(excinfo.value)
    assert len(await client.runs.list(thread_id)) == 1
    after = await client.threads.get(thread_id)
    assert (after["status"], after["interrupts"]) == ("interrupted", before["interrupts"])
    await client.runs.wait(thread_id, "agent", command={"resume": {"decisions": [{"type": "approve"}]}})
    assert await _outbox(client, thread_id) == [DRAFT]


async def test_a_string_input_is_an_error_that_says_so_not_an_outage(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """``"input": "hi"`` ends the run ``error`` saying the input did not fit; the agent's error boundary
    does not answer it with its "a service I rely on is failing" message."""
    thread_id = (await client.threads.create())["thread_id"]

    response = await http.post(
        f"/threads/{thread_id}/runs/wait", json={"assistant_id": "agent", "input": "hi"}
    )

    assert response.status_code == 200, response.text
    error = response.json()["__error__"]
    assert error["error"] == "InvalidUpdateError"
    assert "does not fit the input of graph 'agent'" in error["message"]
    [run] = await client.runs.list(thread_id)
    assert run["status"] == "error"
    state = await client.threads.get_state(thread_id)
    assert "a service I rely on is failing" not in json.dumps(state["values"])
