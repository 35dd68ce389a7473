"""LangGraph's ``StateSnapshot`` as the official server writes a thread state."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from graphrun import encoding
from graphrun.types import Json
from graphrun.wire import checkpoint_json


def state_json(snapshot: StateSnapshot) -> Json:
    interrupts = [i for task in snapshot.tasks for i in task.interrupts]
    return {
        "values": encoding.jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [_task_json(t) for t in snapshot.tasks],
        "metadata": encoding.jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint_json(snapshot.config),
        "parent_checkpoint": checkpoint_json(snapshot.parent_config),
        "interrupts": encoding.jsonable(interrupts),
    }


def _task_json(task: Any) -> Json:
    state = task.state
    return {
        "id": task.id,
        "name": task.name,
        "path": encoding.jsonable(list(task.path)) if task.path else [],
        "error": repr(task.error) if task.error is not None else None,
        "interrupts": encoding.jsonable(list(task.interrupts)),
        "checkpoint": checkpoint_json(state) if isinstance(state, dict) else None,  # type: ignore[arg-type]
        "state": state_json(state) if isinstance(state, StateSnapshot) else None,
        "result": encoding.jsonable(task.result) if task.result is not None else None,
    }


def empty_state(thread_id: str) -> Json:
    """The state of a thread no run has touched yet."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": None,
            "checkpoint_map": None,
        },
        "parent_checkpoint": None,
        "interrupts": [],
    }
