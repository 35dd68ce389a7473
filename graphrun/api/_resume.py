"""Checking a ``command.resume`` against the interrupts the thread is waiting on, before a run is written.

LangGraph validates a resume value inside the node, against the interrupt's ``response_schema``, and
LangChain's human-in-the-loop middleware checks its decisions as it applies them: a bad value fails the
run. Checked here first, a client gets a 422 that says what is wrong, and the thread
stays interrupted with nothing written. The pending interrupts are the thread row's (what the last run
left), so the check is skipped while a run is in flight: the thread's state is about to change.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from graphrun import errors
from graphrun.models import Thread
from graphrun.types import Json

# How LangGraph tells a map of resume values by interrupt id from a plain value: every key is an id.
_INTERRUPT_ID = re.compile(r"[0-9a-f]{32}")


def check_resume(thread: Thread, resume: Any) -> None:
    if thread.status == "busy":
        return
    pending = {i["id"]: i for items in thread.interrupts.values() for i in items if "id" in i}
    if not pending:
        raise errors.InvalidRequest(
            f"thread {thread.thread_id} has no pending interrupt to resume (status {thread.status!r}); "
            "send input instead of command.resume"
        )
    if isinstance(resume, dict) and resume and all(_INTERRUPT_ID.fullmatch(str(k)) for k in resume):
        unknown = sorted(set(resume) - set(pending))
        if unknown:
            raise errors.InvalidRequest(
                f"command.resume names interrupt {unknown[0]!r}, which thread {thread.thread_id} is not "
                f"waiting on; pending: {', '.join(sorted(pending))}"
            )
        for interrupt_id, value in resume.items():
            _validate(pending[interrupt_id], value, f"command.resume[{interrupt_id!r}]")
        return
    for interrupt in pending.values():
        _validate(interrupt, resume, "command.resume")


def _validate(interrupt: Json, value: Any, where: str) -> None:
    if _is_human_in_the_loop(interrupt.get("value")):
        problem = _hitl_problem(interrupt["value"], value)
        if problem is not None:
            raise errors.InvalidRequest(
                f"{where} does not answer interrupt {interrupt['id']} (LangChain's human-in-the-loop "
                f'request): {problem}; expected {{"decisions": [one per action request, in order]}}'
            )
        return
    schema = interrupt.get("response_schema")
    if not isinstance(schema, dict):
        return
    validator_class = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    if error is not None:
        path = "".join(f"[{p!r}]" for p in error.absolute_path)
        raise errors.InvalidRequest(
            f"{where}{path} does not match the response_schema of interrupt {interrupt['id']}: "
            f"{error.message}"
        )


# LangChain's HumanInTheLoopMiddleware asks with {"action_requests": [...], "review_configs": [...]} and
# takes {"decisions": [...]}, one per action request in order. It checks an answer only as it applies it,
# inside the graph, where a bad one fails the run; checked here, the client gets a 422 and can answer
# again. (Its per-call mode sends a response_schema instead, checked as any other.) Keys a decision does
# not need are let through, as LangChain's Decision TypedDicts do (the middleware reads only its own).
def _is_human_in_the_loop(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("action_requests"), list)
        and isinstance(value.get("review_configs"), list)
    )


def _hitl_problem(request: Json, answer: Any) -> str | None:
    """What is wrong with ``answer`` to the human-in-the-loop ``request``, or None when it fits."""
    decisions = answer.get("decisions") if isinstance(answer, dict) else None
    if not isinstance(decisions, list):
        return "it has no 'decisions' list"
    actions = request["action_requests"]
    if len(decisions) != len(actions):
        return f"{len(decisions)} decision(s) for {len(actions)} action request(s)"
    allowed_by_name = {
        c.get("action_name"): c.get("allowed_decisions") or []
        for c in request["review_configs"]
        if isinstance(c, dict)
    }
    for i, (action, decision) in enumerate(zip(actions, decisions, strict=True)):
        name = action.get("name") if isinstance(action, dict) else None
        kind = decision.get("type") if isinstance(decision, dict) else None
        allowed = allowed_by_name.get(name, [])
        if not isinstance(kind, str) or kind not in allowed:
            return f"decisions[{i}] for {name!r} has type {kind!r}; allowed: {', '.join(map(str, allowed))}"
        assert isinstance(decision, dict)
        problem = _decision_problem(kind, decision)
        if problem is not None:
            return f"decisions[{i}] ({kind}) {problem}"
    return None


def _decision_problem(kind: str, decision: Json) -> str | None:
    if kind == "edit":
        edited = decision.get("edited_action")
        if not (isinstance(edited, dict) and isinstance(edited.get("name"), str)):
            return "needs 'edited_action' with a 'name'"
        if not isinstance(edited.get("args"), dict):
            return "needs 'edited_action.args' as an object"
    message = decision.get("message")
    if kind == "respond" and not isinstance(message, str):
        return "needs a 'message'"
    if message is not None and not isinstance(message, str):
        return "has a 'message' that is not a string"
    return None
