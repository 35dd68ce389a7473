"""Human in the loop: interrupts and how they are published, resuming (by value, by interrupt id, with goto
and update), static breakpoints, forks from a past checkpoint, state edits, and the resumes that are refused.

What the basic ``interrupting`` round trip already checks lives in test_runs.py; these go further. Every
expected value here is what LangGraph itself computes for the same graph and commands on an in-memory saver.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Command, ThreadState

from tests.harness.embedded import Server
from tests.harness.sdk import as_dict, body_text, status_of

from ._support import new_thread

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]

NOT_PENDING_ID = "0123456789abcdef0123456789abcdef"


async def _interrupted(client: LangGraphClient, graph: str, input: dict[str, Any]) -> tuple[str, list[Any]]:
    """A new thread whose first run stopped at ``interrupt()``: its id and the ``__interrupt__`` list."""
    thread_id = await new_thread(client)
    out = as_dict(await client.runs.wait(thread_id, graph, input=input))
    interrupts: list[Any] = out["__interrupt__"]
    return thread_id, interrupts


async def _snapshot(client: LangGraphClient, thread_id: str) -> dict[str, Any]:
    """What a refused request must leave as it was: runs, thread status and interrupts, state, history."""
    thread = await client.threads.get(thread_id)
    history = await client.threads.get_history(thread_id, limit=100)
    return {
        "runs": [(r["run_id"], r["status"]) for r in await client.runs.list(thread_id, limit=100)],
        "status": thread["status"],
        "interrupts": thread["interrupts"],
        "values": (await client.threads.get_state(thread_id))["values"],
        "history": [s["checkpoint"]["checkpoint_id"] for s in history],
    }


def _parent_id(state: ThreadState) -> str | None:
    parent = state["parent_checkpoint"]
    return parent["checkpoint_id"] if parent else None


def _ancestry(history: list[ThreadState]) -> list[str]:
    """Checkpoint ids from the head back to the first, following ``parent_checkpoint`` (not list order)."""
    by_id = {s["checkpoint"]["checkpoint_id"]: s for s in history}
    chain: list[str] = []
    current: ThreadState | None = history[0]
    while current is not None:
        checkpoint_id = current["checkpoint"]["checkpoint_id"]
        assert checkpoint_id is not None
        chain.append(checkpoint_id)
        parent = current["parent_checkpoint"]
        current = by_id.get(parent["checkpoint_id"]) if parent else None
    return chain


# --- an interrupt, as every surface shows it ----------------------------------------------------------------


async def test_an_interrupt_with_a_response_schema_is_published_on_every_surface(
    client: LangGraphClient,
) -> None:
    """The run succeeds, the thread is interrupted, and the same interrupt (id, value, JSON Schema) appears in
    the stream's updates and values, in /wait's output, on the thread and in the state's task."""
    thread_id = await new_thread(client)

    events = [
        part
        async for part in client.runs.stream(
            thread_id, "approval", input={"draft": "v1"}, stream_mode=["values", "updates"]
        )
    ]

    run_id = events[0].data["run_id"]
    interrupt_updates = [e.data for e in events if e.event == "updates" and "__interrupt__" in e.data]
    assert len(interrupt_updates) == 1
    (published,) = interrupt_updates[0]["__interrupt__"]
    assert published["value"] == {"question": "publish this draft?", "draft": "v1"}
    assert isinstance(published["id"], str)
    assert published["id"]
    schema = published["response_schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["approved"]
    assert schema["properties"]["approved"]["type"] == "boolean"
    assert schema["properties"]["note"]["type"] == "string"
    assert events[-1].event == "values"
    assert events[-1].data == {"draft": "v1", "__interrupt__": [published]}

    assert (await client.runs.get(thread_id, run_id))["status"] == "success"
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert thread["values"] == {"draft": "v1"}
    assert list(thread["interrupts"].values()) == [[published]]
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["review"]
    assert [(t["name"], t["interrupts"]) for t in state["tasks"]] == [("review", [published])]
    assert list(thread["interrupts"]) == [state["tasks"][0]["id"]]  # keyed by the task that is waiting
    # Joining the finished run gives what /wait gives: the values with the interrupt merged in.
    assert await client.runs.join(thread_id, run_id) == {"draft": "v1", "__interrupt__": [published]}


# --- resuming -----------------------------------------------------------------------------------------------


async def test_a_resume_valid_for_the_schema_finishes_the_graph(client: LangGraphClient) -> None:
    thread_id, interrupts = await _interrupted(client, "approval", {"draft": "v1"})
    assert len(interrupts) == 1

    out = await client.runs.wait(
        thread_id, "approval", command={"resume": {"approved": True, "note": "ship it"}}
    )

    assert out == {"draft": "v1", "decision": {"approved": True, "note": "ship it"}, "published": True}
    assert [r["status"] for r in await client.runs.list(thread_id)] == ["success", "success"]
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    assert not thread["interrupts"]
    assert (await client.threads.get_state(thread_id))["next"] == []


async def test_two_pending_interrupts_resumed_one_at_a_time_by_id(client: LangGraphClient) -> None:
    """A map resume answers only the interrupts it names; the other stays pending, with the same id."""
    thread_id, interrupts = await _interrupted(client, "two_questions", {})
    ids = {i["value"]: i["id"] for i in interrupts}
    assert set(ids) == {"left?", "right?"}
    assert len(set(ids.values())) == 2
    assert len((await client.threads.get(thread_id))["interrupts"]) == 2

    partial = as_dict(
        await client.runs.wait(thread_id, "two_questions", command={"resume": {ids["left?"]: "L"}})
    )

    assert partial["__interrupt__"] == [{"value": "right?", "id": ids["right?"], "response_schema": None}]
    assert partial["answers"] == ["left=L"]
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert [i["id"] for pending in thread["interrupts"].values() for i in pending] == [ids["right?"]]

    out = await client.runs.wait(thread_id, "two_questions", command={"resume": {ids["right?"]: "R"}})

    assert out == {"answers": ["left=L", "right=R"]}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_two_pending_interrupts_resumed_together_by_id(client: LangGraphClient) -> None:
    thread_id, interrupts = await _interrupted(client, "two_questions", {})
    ids = {i["value"]: i["id"] for i in interrupts}

    out = as_dict(
        await client.runs.wait(
            thread_id, "two_questions", command={"resume": {ids["right?"]: "no", ids["left?"]: "yes"}}
        )
    )

    assert sorted(out["answers"]) == ["left=yes", "right=no"]
    assert "__interrupt__" not in out
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    assert not thread["interrupts"]


async def test_resume_with_update_changes_the_state_as_it_resumes(client: LangGraphClient) -> None:
    thread_id, _ = await _interrupted(client, "interrupting", {"topic": "draft"})

    out = await client.runs.wait(
        thread_id, "interrupting", command={"resume": "ok", "update": {"topic": "final"}}
    )

    assert out == {"topic": "final", "prepared": True, "answer": "ok"}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_goto_with_update_while_interrupted_reruns_the_node_and_asks_again(
    client: LangGraphClient,
) -> None:
    """``goto`` sends execution back to ``prepare`` while ``ask`` still waits; LangGraph's semantics pass
    through unchanged (the same graph and commands on an in-memory saver give these values)."""
    thread_id, (first,) = await _interrupted(client, "interrupting", {"topic": "draft"})

    events = [
        part
        async for part in client.runs.stream(
            thread_id,
            "interrupting",
            command={"goto": "prepare", "update": {"topic": "v2"}},
            stream_mode=["updates", "values"],
        )
    ]

    # The pending `ask` and the `prepare` that goto adds run in one step (as LangGraph does it).
    updates = [e.data for e in events if e.event == "updates"]
    assert len(updates) == 2
    assert {"prepare": {"prepared": True}} in updates
    assert {"__interrupt__": [first]} in updates
    state = await client.threads.get_state(thread_id)
    assert state["values"] == {"topic": "v2", "prepared": True}
    assert state["next"] == ["ask"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    # The pending question is answered; `prepare` having run again, `ask` asks once more (a new interrupt).
    resumed = as_dict(await client.runs.wait(thread_id, "interrupting", command={"resume": "yes"}))
    (second,) = resumed.pop("__interrupt__")
    assert resumed == {"topic": "v2", "prepared": True, "answer": "yes"}
    assert second["value"] == {"question": "approve?"}
    assert second["id"] != first["id"]
    final = await client.runs.wait(thread_id, "interrupting", command={"resume": "again"})
    assert final == {"topic": "v2", "prepared": True, "answer": "again"}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_goto_on_a_finished_thread_runs_only_that_node(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0})

    out = await client.runs.wait(thread_id, "counter", command={"goto": "b", "update": {"count": 10}})

    assert out == {"count": 11, "trail": ["a", "b", "b"]}
    assert (await client.threads.get(thread_id))["status"] == "idle"


# --- static breakpoints, update_state, forks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("breakpoint", "stopped_at", "next_node"),
    [
        ({"interrupt_before": ["b"]}, {"count": 1, "trail": ["a"]}, "b"),
        ({"interrupt_after": ["a"]}, {"count": 1, "trail": ["a"]}, "b"),
        ({"interrupt_before": "*"}, {"count": 0, "trail": []}, "a"),
        ({"interrupt_after": ["b"]}, {"count": 2, "trail": ["a", "b"]}, None),
    ],
    ids=["before-b", "after-a", "before-all", "after-last"],
)
async def test_a_static_breakpoint_stops_the_run_and_a_run_without_input_continues(
    client: LangGraphClient, breakpoint: dict[str, Any], stopped_at: dict[str, Any], next_node: str | None
) -> None:
    thread_id = await new_thread(client)

    out = await client.runs.wait(thread_id, "counter", input={"count": 0}, **breakpoint)

    assert out == stopped_at
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ([next_node] if next_node else [])
    thread = await client.threads.get(thread_id)
    assert thread["status"] == ("interrupted" if next_node else "idle")
    assert [r["status"] for r in await client.runs.list(thread_id)] == ["success"]
    if next_node is None:
        return

    # The continuation has no breakpoint of its own: it runs to the end.
    assert await client.runs.wait(thread_id, "counter", input=None) == {"count": 2, "trail": ["a", "b"]}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_update_state_at_a_breakpoint_then_continue(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0}, interrupt_before=["b"])

    await client.threads.update_state(thread_id, {"count": 40})

    state = await client.threads.get_state(thread_id)
    assert state["values"] == {"count": 40, "trail": ["a"]}
    assert state["next"] == ["b"]  # the edit is recorded as written by `a`, so `b` is still next
    out = await client.runs.wait(thread_id, "counter", input=None)
    assert out == {"count": 41, "trail": ["a", "b"]}


async def test_update_state_while_interrupted_then_resume(client: LangGraphClient) -> None:
    """Editing a thread that waits on ``interrupt()`` keeps it waiting; the answer then sees the edit."""
    thread_id, _ = await _interrupted(client, "interrupting", {"topic": "draft"})

    await client.threads.update_state(thread_id, {"topic": "edited"}, as_node="prepare")

    thread = await client.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert (await client.threads.get_state(thread_id))["next"] == ["ask"]
    again = as_dict(await client.runs.wait(thread_id, "interrupting", input=None))
    assert again["topic"] == "edited"
    assert [i["value"] for i in again["__interrupt__"]] == [{"question": "approve?"}]
    out = await client.runs.wait(thread_id, "interrupting", command={"resume": "fine"})
    assert out == {"topic": "edited", "prepared": True, "answer": "fine"}


@pytest.mark.parametrize("form", ["checkpoint_id", "checkpoint"])
async def test_a_run_from_a_past_checkpoint_forks_and_history_keeps_both_branches(
    client: LangGraphClient, form: str
) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0})
    first_run = (await client.runs.list(thread_id))[0]["run_id"]
    original = await client.threads.get_history(thread_id, limit=100)
    after_a = next(s for s in original if s["next"] == ["b"])
    fork_point = after_a["checkpoint"]["checkpoint_id"]
    assert fork_point is not None
    original_head = original[0]["checkpoint"]["checkpoint_id"]

    where: dict[str, Any] = (
        {"checkpoint_id": fork_point} if form == "checkpoint_id" else {"checkpoint": after_a["checkpoint"]}
    )

    out = await client.runs.wait(thread_id, "counter", input={"count": 50}, **where)

    assert out == {"count": 52, "trail": ["a", "a", "b"]}  # from {count: 1, trail: [a]}, input count 50, a, b
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "success"]
    fork_run = runs[0]["run_id"]
    history = await client.threads.get_history(thread_id, limit=100)
    ids = {s["checkpoint"]["checkpoint_id"] for s in history}
    assert {s["checkpoint"]["checkpoint_id"] for s in original} <= ids  # the old branch is all still there
    children = [s for s in history if _parent_id(s) == fork_point]
    assert sorted(as_dict(s["metadata"])["run_id"] for s in children) == sorted([first_run, fork_run])
    # The head descends from the fork point and not from the old head.
    chain = _ancestry(history)
    assert chain[0] == history[0]["checkpoint"]["checkpoint_id"]
    assert fork_point in chain
    assert original_head not in chain
    assert as_dict(history[0]["metadata"])["run_id"] == fork_run
    # The old branch's last state can still be read by its checkpoint id.
    old = await client.threads.get_state(thread_id, checkpoint_id=original_head)
    assert old["values"] == {"count": 2, "trail": ["a", "b"]}


async def test_a_fork_from_before_an_answered_question_asks_it_again(client: LangGraphClient) -> None:
    """Time travel: run again from the checkpoint before ``review``; the question is asked anew and a
    different answer gives a different outcome, while the first answer's branch stays in the history."""
    thread_id, _ = await _interrupted(client, "approval", {"draft": "v1"})
    waiting = await client.threads.get_state(thread_id)
    before_review = _parent_id(waiting)
    assert before_review is not None
    await client.runs.wait(thread_id, "approval", command={"resume": {"approved": True}})
    assert (await client.threads.get(thread_id))["status"] == "idle"

    asked = as_dict(await client.runs.wait(thread_id, "approval", input=None, checkpoint_id=before_review))

    assert asked["draft"] == "v1"
    assert "decision" not in asked
    assert [i["value"] for i in asked["__interrupt__"]] == [
        {"question": "publish this draft?", "draft": "v1"}
    ]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    out = await client.runs.wait(thread_id, "approval", command={"resume": {"approved": False, "note": "no"}})
    assert out == {"draft": "v1", "decision": {"approved": False, "note": "no"}, "published": False}
    history = await client.threads.get_history(thread_id, limit=100)
    assert len([s for s in history if _parent_id(s) == before_review]) == 2  # the first branch and the fork
    published = sorted(bool(as_dict(s["values"]).get("published")) for s in history if not s["next"])
    assert published == [False, True]  # both branches' ends are kept


# --- the sync client ----------------------------------------------------------------------------------------


def test_a_round_trip_with_the_sync_client(server: Server) -> None:
    with get_sync_client(url=server.url, api_key=None, timeout=30.0) as client:
        thread_id = client.threads.create()["thread_id"]
        out = as_dict(client.runs.wait(thread_id, "approval", input={"draft": "sync"}))
        (pending,) = out["__interrupt__"]
        assert pending["response_schema"]["required"] == ["approved"]
        assert client.threads.get(thread_id)["status"] == "interrupted"

        resumed = client.runs.wait(
            thread_id, "approval", command={"resume": {pending["id"]: {"approved": True}}}
        )

        assert resumed == {"draft": "sync", "decision": {"approved": True, "note": ""}, "published": True}
        assert client.threads.get(thread_id)["status"] == "idle"
        assert [r["status"] for r in client.runs.list(thread_id)] == ["success", "success"]


# --- resumes that are refused -------------------------------------------------------------------------------


async def _post_run(
    http: httpx.AsyncClient, thread_id: str, endpoint: str, body: dict[str, Any]
) -> httpx.Response:
    """POST a run to ``/threads/{id}/runs{endpoint}``; a stream's body is read to the end."""
    async with http.stream("POST", f"/threads/{thread_id}/runs{endpoint}", json=body) as response:
        await response.aread()
        return response


@pytest.mark.parametrize("endpoint", ["", "/wait", "/stream"], ids=["create", "wait", "stream"])
async def test_resume_with_nothing_pending_is_422_and_writes_nothing(
    client: LangGraphClient, http: httpx.AsyncClient, endpoint: str
) -> None:
    finished = await new_thread(client)
    await client.runs.wait(finished, "counter", input={"count": 0})
    fresh = await new_thread(client)

    for thread_id in (finished, fresh):
        before = await _snapshot(client, thread_id)

        response = await _post_run(
            http, thread_id, endpoint, {"assistant_id": "counter", "command": {"resume": "yes"}}
        )

        assert response.status_code == 422, response.text
        assert "no pending interrupt" in response.text
        assert await _snapshot(client, thread_id) == before


async def test_a_command_together_with_input_wins_and_the_input_is_ignored(client: LangGraphClient) -> None:
    """As the official server (the chat UI resumes with ``input: {}`` beside the command)."""
    thread_id, _ = await _interrupted(client, "interrupting", {"topic": "t"})

    output = await client.runs.wait(
        thread_id, "interrupting", input={"topic": "x"}, command={"resume": "yes"}
    )

    assert as_dict(output) == {"topic": "t", "prepared": True, "answer": "yes"}
    assert (await client.threads.get(thread_id))["status"] == "idle"


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"note": "no decision"}, "approved"),
        ({"approved": "maybe"}, "boolean"),
        ({"approved": [True]}, "boolean"),
        ("yes", "object"),
    ],
    ids=["missing-required", "wrong-type", "list-for-bool", "not-an-object"],
)
async def test_a_resume_that_fails_the_response_schema_is_422_and_the_question_stays(
    client: LangGraphClient, bad: object, named: str
) -> None:
    """Refused whether the value is given alone or by interrupt id; the message says what failed and names
    the interrupt; the thread keeps waiting for a valid answer."""
    thread_id, (pending,) = await _interrupted(client, "approval", {"draft": "v1"})
    before = await _snapshot(client, thread_id)

    for command in (Command(resume=bad), Command(resume={pending["id"]: bad})):
        with pytest.raises(httpx.HTTPStatusError) as excinfo:
            await client.runs.wait(thread_id, "approval", command=command)

        assert status_of(excinfo.value) == 422, body_text(excinfo.value)
        detail = str(json.loads(body_text(excinfo.value))["detail"])
        assert named in detail
        assert pending["id"] in detail
        assert await _snapshot(client, thread_id) == before

    assert before["status"] == "interrupted"
    out = await client.runs.wait(thread_id, "approval", command={"resume": {"approved": False}})
    assert out == {"draft": "v1", "decision": {"approved": False, "note": ""}, "published": False}


async def test_a_map_resume_naming_an_interrupt_that_is_not_pending_is_422(client: LangGraphClient) -> None:
    thread_id, interrupts = await _interrupted(client, "two_questions", {})
    ids = {i["value"]: i["id"] for i in interrupts}
    before = await _snapshot(client, thread_id)

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.runs.create(
            thread_id, "two_questions", command={"resume": {ids["left?"]: "L", NOT_PENDING_ID: "X"}}
        )

    assert status_of(excinfo.value) == 422
    assert NOT_PENDING_ID in body_text(excinfo.value)
    assert await _snapshot(client, thread_id) == before
    # An id that was pending once but has been answered is not pending either.
    await client.runs.wait(thread_id, "two_questions", command={"resume": {ids["left?"]: "L"}})
    with pytest.raises(httpx.HTTPStatusError) as again:
        await client.runs.create(thread_id, "two_questions", command={"resume": {ids["left?"]: "again"}})
    assert status_of(again.value) == 422
    assert ids["left?"] in body_text(again.value)
