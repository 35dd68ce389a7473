"""The example agent (examples/agent) served by graphrun on its own langgraph.json, driven with the SDK.

An email request streams the model's tool call token by token, then the run stops before anything is sent and
the thread waits as ``interrupted`` with the pending action and the decision schema. Each decision (approve,
edit, reject) is resumed on its own thread and must leave the right messages and the right outbox: the
example's ``send_email`` files what it sends in the store under ``("outbox", <thread id>)``, so "sent exactly
once" and "never sent" can be checked from the outside. The server runs the offline model: no provider key
reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamMode, StreamPart

from ._support import Server, as_dict, body_text, status_of

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "agent" / "langgraph.json"
PROVIDER_ENV_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENT_MODEL", "OPENAI_BASE_URL")
STREAM_MODES: list[StreamMode] = ["values", "messages-tuple"]

EMAIL_REQUEST = "Send an email to ann@example.com about the launch saying We ship on Friday."
DRAFT = {"to": "ann@example.com", "subject": "the launch", "body": "We ship on Friday."}
EDITED = {"to": "team@example.com", "subject": "Launch date", "body": "We ship on Monday."}


@dataclass
class OfflineServer(Server):
    """A graphrun process without provider settings in its environment: the agent uses the offline model."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        for name in PROVIDER_ENV_VARS:
            env.pop(name, None)
        return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example's own config; overrides conftest's ``server``, so ``client`` and failure reports use it."""
    base = tmp_path_factory.mktemp("example-agent")
    srv = OfflineServer(config=EXAMPLE_CONFIG, data_dir=base / "data", log_dir=base / "logs")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


async def _stream(client: LangGraphClient, thread_id: str, **run: Any) -> list[StreamPart]:
    """Every event of one streamed ``agent`` run on the thread, in order."""
    return [part async for part in client.runs.stream(thread_id, "agent", stream_mode=STREAM_MODES, **run)]


def _agent_chunks(events: list[StreamPart]) -> list[dict[str, Any]]:
    """The model's token chunks: ``messages`` events ([chunk, metadata]) from the ``agent`` node."""
    chunks: list[dict[str, Any]] = []
    for event in events:
        if event.event != "messages":
            continue
        chunk, metadata = event.data
        if metadata["langgraph_node"] == "agent" and chunk["type"] == "AIMessageChunk":
            chunks.append(chunk)
    return chunks


async def _outbox(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    """The emails send_email filed for the thread: one item per email actually sent."""
    found = await client.store.search_items(["outbox", thread_id], limit=100)
    return [as_dict(item["value"]) for item in found["items"]]


async def _paused_email_thread(client: LangGraphClient) -> tuple[str, list[StreamPart]]:
    """A new thread whose streamed email request stopped for review: its id and the run's events."""
    thread_id = (await client.threads.create())["thread_id"]
    events = await _stream(
        client, thread_id, input={"messages": [{"role": "user", "content": EMAIL_REQUEST}]}
    )
    return thread_id, events


async def test_an_email_request_streams_its_tool_call_then_waits_for_a_human(client: LangGraphClient) -> None:
    """Tokens stream, the run succeeds, and the thread is interrupted with the pending email and the decision
    schema; nothing has been sent."""
    thread_id, events = await _paused_email_thread(client)

    assert events[0].event == "metadata"
    chunks = _agent_chunks(events)
    assert len(chunks) > 1  # streamed in pieces, not one message at the end
    pieces = [piece for chunk in chunks for piece in chunk["tool_call_chunks"]]
    assert pieces[0]["name"] == "send_email"
    assert json.loads("".join(piece["args"] for piece in pieces)) == DRAFT
    run = await client.runs.get(thread_id, events[0].data["run_id"])
    assert run["status"] == "success"

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    [[pending]] = as_dict(thread["interrupts"]).values()
    request = as_dict(thread["values"])["messages"][-1]
    assert request["type"] == "ai"
    assert pending["value"] == {
        "action": "send_email",
        "args": DRAFT,
        "tool_call_id": request["tool_calls"][0]["id"],
        "question": "Run send_email with these arguments? Approve, edit the arguments, or reject.",
    }
    schema = pending["response_schema"]
    assert schema["discriminator"]["propertyName"] == "decision"
    assert set(schema["discriminator"]["mapping"]) == {"approve", "edit", "reject"}
    assert schema["$defs"]["EditedEmail"]["required"] == ["to", "subject", "body"]
    assert events[-1].event == "values"
    assert events[-1].data["__interrupt__"] == [pending]
    assert await _outbox(client, thread_id) == []


@pytest.mark.parametrize(
    ("decision", "sent", "tool_result"),
    [
        (
            {"decision": "approve"},
            [DRAFT],
            "Email sent to ann@example.com with the subject 'the launch'",
        ),
        (
            {"decision": "edit", "args": EDITED},
            [EDITED],
            "Email sent to team@example.com with the subject 'Launch date'",
        ),
        (
            {"decision": "reject", "reason": "the date is not final"},
            [],
            "The user rejected this call, so send_email did not run. Reason: the date is not final",
        ),
    ],
    ids=["approve", "edit", "reject"],
)
async def test_each_decision_resumes_to_the_right_outcome(
    client: LangGraphClient, decision: dict[str, Any], sent: list[dict[str, str]], tool_result: str
) -> None:
    """Approve sends the model's draft once, edit sends the reviewer's once, reject sends nothing; the model's
    streamed answer reports what happened and the thread is idle again."""
    thread_id, _ = await _paused_email_thread(client)

    events = await _stream(client, thread_id, command={"resume": decision})

    run = await client.runs.get(thread_id, as_dict(events[0].data)["run_id"])
    assert run["status"] == "success"
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    assert not thread["interrupts"]
    messages = as_dict(thread["values"])["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[2]["content"] == tool_result
    assert messages[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]
    assert messages[2]["status"] == ("error" if decision["decision"] == "reject" else "success")
    answer = messages[-1]
    assert tool_result in answer["content"]
    assert not answer["tool_calls"]
    tokens = [chunk["content"] for chunk in _agent_chunks(events) if chunk["content"]]
    assert len(tokens) > 1
    assert "".join(tokens) == answer["content"]
    outbox = await _outbox(client, thread_id)
    assert [{key: email[key] for key in ("to", "subject", "body")} for email in outbox] == sent


@pytest.mark.parametrize(
    "decision",
    [
        {"decision": "send it"},
        {"decision": "edit", "args": {"to": "team@example.com"}},
        {"decision": "edit", "args": {**EDITED, "cc": "boss@example.com"}},
    ],
    ids=["unknown-decision", "edit-missing-fields", "edit-unknown-field"],
)
async def test_a_decision_outside_the_schema_is_refused_and_the_email_stays_pending(
    client: LangGraphClient, decision: dict[str, Any]
) -> None:
    """A resume that does not match the published schema gets a 422 and starts no run; the same question can
    still be answered, and approving then sends the email once."""
    thread_id, _ = await _paused_email_thread(client)
    before = await client.threads.get(thread_id)

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.runs.wait(thread_id, "agent", command={"resume": decision})

    assert status_of(excinfo.value) == 422, body_text(excinfo.value)
    assert "response_schema" in body_text(excinfo.value)
    assert len(await client.runs.list(thread_id)) == 1
    after = await client.threads.get(thread_id)
    assert (after["status"], after["interrupts"]) == ("interrupted", before["interrupts"])
    await client.runs.wait(thread_id, "agent", command={"resume": {"decision": "approve"}})
    assert [email["to"] for email in await _outbox(client, thread_id)] == [DRAFT["to"]]
