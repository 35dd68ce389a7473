"""What real clients send, in both modes: the chat UI's approvals (``input`` beside ``command``), a
``Last-Event-ID`` that is no event id, and an input that does not fit the graph.

Every expectation was first observed on the official server (``langgraph dev``, langgraph-api 0.16.7):
a command wins over an input sent with it, on every run endpoint, whether the input is ``{}``, ``null``
or a real value; a run's stream joined with a header that is no event id follows from now on; an input
that does not fit the graph is accepted and the run ends ``error`` (graphrun's message says the input
did not fit, and keeps nothing of it in the thread).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict, sse_events
from tests.harness.targets import Target
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "clients.json"

ASKED = {"draft": "a plan"}  # the `asks` graph's values while it waits at its question


async def _asking(client: LangGraphClient) -> str:
    """A thread of the `asks` graph, waiting at its question."""
    thread_id: str = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "asks", input={})
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["ask"]
    return thread_id


async def _answered(client: LangGraphClient, thread_id: str) -> Any:
    state = await client.threads.get_state(thread_id)
    assert state["next"] == []
    return state["values"]


# ---------------------------------------------------------------- input beside command: the command wins


@pytest.mark.parametrize("given", [{}, None, {"draft": "ignored"}], ids=["empty", "null", "real"])
async def test_runs_stream_with_input_beside_a_resume_resumes(
    client: LangGraphClient, http: httpx.AsyncClient, given: Any
) -> None:
    """The chat UI's approve: ``{"input": {}, "command": {"resume": ...}}`` to ``runs/stream``."""
    thread_id = await _asking(client)
    body = {"assistant_id": "asks", "input": given, "command": {"resume": {"decision": "approve"}}}

    response = await http.post(f"/threads/{thread_id}/runs/stream", json=body)

    assert response.status_code == 200, response.text
    events = sse_events(response.text.splitlines())
    assert [name for _, name, _ in events][:1] == ["metadata"]
    assert "error" not in [name for _, name, _ in events]
    assert await _answered(client, thread_id) == {**ASKED, "answer": {"decision": "approve"}}


async def test_runs_wait_through_the_sdk_with_input_beside_a_resume_ignores_the_input(
    client: LangGraphClient,
) -> None:
    thread_id = await _asking(client)

    output = await client.runs.wait(thread_id, "asks", input={"draft": "not this"}, command={"resume": "yes"})

    assert output == {**ASKED, "answer": "yes"}
    assert await _answered(client, thread_id) == {**ASKED, "answer": "yes"}


async def test_runs_stream_through_the_sdk_with_input_beside_a_resume(client: LangGraphClient) -> None:
    thread_id = await _asking(client)

    parts = [p async for p in client.runs.stream(thread_id, "asks", input={}, command={"resume": "ok"})]

    assert parts[0].event == "metadata"
    assert parts[-1].data == {**ASKED, "answer": "ok"}


async def test_a_created_run_with_input_beside_a_resume_is_written_with_both(
    client: LangGraphClient,
) -> None:
    """As the official server, the run keeps both in its kwargs; the command is what ran."""
    thread_id = await _asking(client)

    run = await client.runs.create(thread_id, "asks", input={}, command={"resume": "later"})
    await client.runs.join(thread_id, run["run_id"])

    kwargs = as_dict(as_dict(run)["kwargs"])
    assert (kwargs["input"], kwargs["command"]) == ({}, {"resume": "later"})
    assert await _answered(client, thread_id) == {**ASKED, "answer": "later"}


async def test_mark_as_resolved_goto_end_with_an_empty_input_is_accepted(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """The chat UI's "mark as resolved": ``{"input": {}, "command": {"goto": "__end__"}}``."""
    thread_id = await _asking(client)
    body = {"assistant_id": "asks", "input": {}, "command": {"goto": "__end__"}}

    response = await http.post(f"/threads/{thread_id}/runs/wait", json=body)

    assert response.status_code == 200, response.text
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "success"]


async def test_a_batch_item_with_input_beside_a_resume_is_accepted(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """graphrun's batch takes items on threads (the official server's runs each item stateless)."""
    thread_id = await _asking(client)
    item = {"assistant_id": "asks", "thread_id": thread_id, "input": {}, "command": {"resume": "b"}}

    response = await http.post("/runs/batch", json=[item])

    assert response.status_code == 200, response.text
    await client.runs.join(thread_id, response.json()[0]["run_id"])
    assert await _answered(client, thread_id) == {**ASKED, "answer": "b"}


async def test_a_stateless_resume_beside_an_input_is_still_refused(http: httpx.AsyncClient) -> None:
    """As the official server (0.16.x, ``create_valid_run``): a 400 "You must provide a thread_id when
    resuming.", since there is nothing to resume; nothing is written."""
    body = {"assistant_id": "asks", "input": {}, "command": {"resume": "x"}}
    before = (await http.post("/threads/count", json={})).json()

    response = await http.post("/runs/wait", json=body)

    assert response.status_code == 400, response.text
    assert "You must provide a thread_id when resuming." in response.json()["detail"]
    assert (await http.post("/threads/count", json={})).json() == before


async def test_a_stateless_run_with_a_falsy_resume_is_accepted(http: httpx.AsyncClient) -> None:
    """The official server refuses only a truthy ``command.resume`` without a thread; a run with
    ``resume: null`` is accepted and its run fails inside LangGraph, as there (0.16.7 answers 200 with an
    ``__error__``)."""
    body = {"assistant_id": "asks", "input": {}, "command": {"resume": None}}

    response = await http.post("/runs/wait", json=body)

    assert response.status_code == 200, response.text
    assert "__error__" in response.json()


# ---------------------------------------------------------------- Last-Event-ID


async def _finished_run(client: LangGraphClient) -> tuple[str, str, list[Any]]:
    thread_id: str = (await client.threads.create())["thread_id"]
    parts = [
        p
        async for p in client.runs.stream(
            thread_id, "asks", input={}, stream_mode="updates", stream_resumable=True
        )
    ]
    return thread_id, parts[0].data["run_id"], parts


@pytest.mark.parametrize("header", ["not-an-id", "abc"])
async def test_a_last_event_id_that_is_no_event_id_is_ignored(
    client: LangGraphClient, http: httpx.AsyncClient, header: str
) -> None:
    """As if no header was sent: the join follows from now on, and the run has ended."""
    thread_id, run_id, _ = await _finished_run(client)

    response = await http.get(f"/threads/{thread_id}/runs/{run_id}/stream", headers={"Last-Event-ID": header})

    assert response.status_code == 200, response.text
    assert response.text.strip() == ""


async def test_a_last_event_id_of_zero_replays_everything(client: LangGraphClient) -> None:
    """``0`` is before every id, as Redis and the official server read it."""
    thread_id, run_id, parts = await _finished_run(client)

    replay = [p async for p in client.runs.join_stream(thread_id, run_id, last_event_id="0")]

    assert [(p.event, p.data) for p in replay] == [(p.event, p.data) for p in parts]


async def test_the_thread_stream_still_refuses_a_last_event_id_that_is_no_event_id(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """The official server answers 422 here ("must be a valid Redis stream ID")."""
    thread_id = (await client.threads.create())["thread_id"]

    response = await http.get(f"/threads/{thread_id}/stream", headers={"Last-Event-ID": "not-an-id"})

    assert response.status_code == 422, response.text


# ---------------------------------------------------------------- input that does not fit the graph


async def _refused(client: LangGraphClient, http: httpx.AsyncClient, graph: str, given: Any) -> Any:
    """Run ``given`` on a new thread of ``graph``; the run (which must have ended ``error``) and its
    thread id."""
    thread_id: str = (await client.threads.create())["thread_id"]
    response = await http.post(
        f"/threads/{thread_id}/runs/wait", json={"assistant_id": graph, "input": given}
    )
    assert response.status_code == 200, response.text  # as the official server: the run is accepted
    error = response.json()["__error__"]
    assert "does not fit the input of graph" in error["message"], error
    [run] = await client.runs.list(thread_id)
    assert run["status"] == "error"
    return thread_id, run["run_id"], error


@pytest.mark.parametrize(
    ("graph", "given", "cause"),
    [
        ("chats", "hi", "Expected dict"),
        ("chats", [1, 2], "Expected dict"),
        ("chats", {"messages": [{"foo": 1}]}, "'role' and 'content'"),
        ("orders", {"quantity": "many"}, "valid integer"),
    ],
    ids=["string", "list", "not-a-message", "schema-validation"],
)
async def test_an_input_that_does_not_fit_ends_the_run_in_error_saying_so(
    client: LangGraphClient, http: httpx.AsyncClient, target: Target, graph: str, given: Any, cause: str
) -> None:
    thread_id, run_id, error = await _refused(client, http, graph, given)

    assert cause in error["message"]
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "error"
    state = await client.threads.get_state(thread_id)  # nothing of the bad input was kept
    assert (state["values"], state["next"]) == ({}, [])
    lines = await eventually(
        lambda: _log_lines(target, run_id),
        lambda found: any(line.get("event") == "run_input_refused" for line in found),
        what="the refusal to be logged",
    )
    assert [line for line in lines if line.get("level") in ("error", "critical")] == []


async def test_a_thread_whose_input_did_not_fit_takes_a_good_one_next(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id, _, _ = await _refused(client, http, "chats", {"messages": [{"foo": 1}]})

    good: Any = {"messages": [{"role": "user", "content": "hi"}]}
    output = await client.runs.wait(thread_id, "chats", input=good)

    assert [m["type"] for m in as_dict(output)["messages"]] == ["human", "ai"]
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def _log_lines(target: Target, run_id: str) -> list[dict[str, Any]]:
    """The server's JSON log lines about ``run_id``."""
    found = []
    for line in target.logs().splitlines():
        if run_id in line and line.startswith("{"):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found
