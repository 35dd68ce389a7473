"""Checking a ``command.resume`` against the interrupts the thread is waiting on, before a run is written.

LangGraph validates a resume value inside the node, against the interrupt's ``response_schema``: a bad
value fails the run. Checked here first, a client gets a 422 that says what is wrong, and the thread
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
