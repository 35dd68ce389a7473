"""``check_resume``: a resume value checked against the interrupts the thread row says are pending."""

from __future__ import annotations

from typing import Any

import pytest

from graphrun import errors
from graphrun.api._resume import check_resume
from graphrun.models import Thread, utcnow
from graphrun.types import Json, ThreadStatus

SCHEMA: Json = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
}
ASK = {"id": "a" * 32, "value": "approve?", "response_schema": SCHEMA}
FREE = {"id": "b" * 32, "value": "anything?"}


def thread(*interrupts: Json, status: ThreadStatus = "interrupted") -> Thread:
    now = utcnow()
    pending = {f"task-{i}": [interrupt] for i, interrupt in enumerate(interrupts)}
    return Thread("t-1", now, now, now, {}, status, {}, pending, {}, None)


@pytest.mark.parametrize(
    "resume",
    [{"approved": True}, {"approved": False, "note": "no"}, {"a" * 32: {"approved": True}}],
    ids=["value", "value-with-note", "map"],
)
def test_a_value_the_schema_accepts_passes(resume: Any) -> None:
    check_resume(thread(ASK), resume)


@pytest.mark.parametrize(
    ("resume", "message"),
    [
        ({"approved": "yes"}, "command.resume['approved'] does not match"),
        ({"note": "x"}, "'approved' is a required property"),
        ("approve", "is not of type 'object'"),
        ({"a" * 32: {"approved": 1}}, f"command.resume['{'a' * 32}']['approved'] does not match"),
    ],
    ids=["wrong-type", "missing-field", "not-an-object", "map-entry"],
)
def test_a_value_the_schema_refuses_is_a_clear_422(resume: Any, message: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=message.replace("[", r"\[")):
        check_resume(thread(ASK), resume)


def test_nothing_pending_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match="no pending interrupt to resume"):
        check_resume(thread(status="idle"), "yes")


def test_a_map_naming_an_interrupt_not_pending_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match=f"names interrupt '{'c' * 32}'"):
        check_resume(thread(ASK, FREE), {"c" * 32: "x", "b" * 32: "y"})


def test_an_interrupt_without_schema_takes_anything() -> None:
    check_resume(thread(FREE), ["any", {"thing": 1}])
    check_resume(thread(ASK, FREE), {"b" * 32: 42, "a" * 32: {"approved": True}})


def test_a_busy_thread_is_not_checked() -> None:
    """Its state is about to change: the run that is in flight decides what will be pending."""
    check_resume(thread(status="busy"), "anything")


# LangChain's HumanInTheLoopMiddleware (batched): two actions, the second with fewer decisions allowed.
HITL = {
    "id": "c" * 32,
    "value": {
        "action_requests": [
            {"name": "send_email", "args": {"to": "a@example.com"}, "description": "send?"},
            {"name": "delete_file", "args": {"path": "x"}},
        ],
        "review_configs": [
            {"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]},
            {"action_name": "delete_file", "allowed_decisions": ["approve", "reject"]},
        ],
    },
}
EDIT = {"type": "edit", "edited_action": {"name": "send_email", "args": {"to": "b@example.com"}}}


@pytest.mark.parametrize(
    "decisions",
    [
        [{"type": "approve"}, {"type": "reject"}],
        [EDIT, {"type": "reject", "message": "keep it"}],
        [{"type": "reject", "message": "no"}, {"type": "approve"}],
        [{**EDIT, "note": "fixed the address"}, {"type": "approve", "by": "ops"}],
    ],
    ids=["approve-reject", "edit-reject-with-message", "reject-approve", "extra-keys"],
)
def test_decisions_that_answer_a_human_in_the_loop_request_pass(decisions: list[Json]) -> None:
    check_resume(thread(HITL), {"decisions": decisions})
    check_resume(thread(HITL), {"c" * 32: {"decisions": decisions}})


@pytest.mark.parametrize(
    ("resume", "problem"),
    [
        ({"decision": "approve"}, "it has no 'decisions' list"),
        ({"decisions": [{"type": "approve"}]}, "1 decision(s) for 2 action request(s)"),
        ({"decisions": [{"type": "approve"}, EDIT]}, "decisions[1] for 'delete_file' has type 'edit'"),
        ({"decisions": ["approve", {"type": "approve"}]}, "decisions[0] for 'send_email' has type None"),
        ({"decisions": [{"type": "edit"}, {"type": "approve"}]}, "needs 'edited_action' with a 'name'"),
        (
            {"decisions": [{"type": "reject", "message": 3}, {"type": "approve"}]},
            "'message' that is not a string",
        ),
    ],
    ids=[
        "no-decisions",
        "too-few",
        "not-allowed",
        "not-an-object",
        "edit-no-action",
        "bad-message",
    ],
)
def test_decisions_that_do_not_answer_a_human_in_the_loop_request_are_a_clear_422(
    resume: Json, problem: str
) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        check_resume(thread(HITL), resume)
    assert problem in refused.value.message
    assert "human-in-the-loop" in refused.value.message
