"""A2A tasks over runs, for ``routes/a2a.py``: a message writes a run through run submission (a new
task, or the next run of the task it names: its answer to an interrupt), a task is read from its runs
and its thread, cancelled as a run is, and streamed from the run's events. The shapes are
``api/_a2a.py``'s.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic

from graphrun import errors
from graphrun.api import _a2a, schemas, sse
from graphrun.api._a2a import INVALID_PARAMS, RpcError
from graphrun.api._resolve import owned_thread, resolve_assistant
from graphrun.api._runs import await_output, cancel, reload
from graphrun.api.authz import Access
from graphrun.api.deps import Services
from graphrun.api.submit import create
from graphrun.models import Assistant, Run, Thread
from graphrun.stores.base import Page
from graphrun.types import Json

# The runs of a context read to find a task's latest run and its history's tasks.
run_scan_limit = 1000


async def assistant_of(svc: Services, access: Access, assistant_id: str) -> Assistant:
    try:
        return await resolve_assistant(svc, assistant_id, access)
    except (errors.NotFound, errors.InvalidRequest):
        raise RpcError(INVALID_PARAMS, f"Assistant '{assistant_id}' not found") from None


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _Task:
    task_id: str
    context_id: str
    run: Run  # the task's latest run
    thread: Thread
    state: str
    starts: dict[str, str]  # task_start_id → task id, for the context's history


async def _task(
    svc: Services, access: Access, assistant_id: str, task_id: str, context_id: str | None
) -> _Task:
    """The task, if it is this assistant's and the caller's; else TASK_NOT_FOUND."""
    missing = RpcError(_a2a.TASK_NOT_FOUND, f"Task not found: {task_id}")
    parsed, run_id = _a2a.parse_task_id(task_id)
    if parsed and context_id and parsed != context_id:
        raise missing
    context = context_id or parsed
    try:
        uuid.UUID(context)
        uuid.UUID(run_id)
        thread = await owned_thread(svc, access, context)
        anchor = await svc.store.get_run(context, run_id)
    except (ValueError, errors.NotFound):
        raise missing from None
    if anchor.assistant_id != assistant_id:
        raise missing
    runs = await svc.store.list_runs(context, None, Page(limit=run_scan_limit))  # newest first
    latest, is_latest = anchor, bool(runs) and runs[0].run_id == anchor.run_id
    for run in runs:
        if run.assistant_id == assistant_id and (
            run.run_id == run_id or _a2a.a2a_metadata(run).get("task_id") == task_id
        ):
            latest, is_latest = run, run.run_id == runs[0].run_id
            break
    starts = {
        str(meta["task_start_id"]): _a2a.task_id_of(context, run)
        for run in runs
        if (meta := _a2a.a2a_metadata(run)).get("task_start_id") and run.assistant_id == assistant_id
    }
    state = _a2a.state_of(latest, thread if is_latest else None)
    return _Task(task_id, context, latest, thread, state, starts)


def _task_ids(params: Json) -> tuple[str, str | None]:
    task_id, context_id = params.get("id"), params.get("contextId")
    if not task_id:
        raise RpcError(INVALID_PARAMS, "Missing required parameter: id (task_id)")
    if not isinstance(task_id, str) or (context_id is not None and not isinstance(context_id, str)):
        raise RpcError(INVALID_PARAMS, "Task id and contextId must be strings")
    return task_id, context_id


def _history_length(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RpcError(INVALID_PARAMS, "historyLength must be a non-negative integer")
    if value > _a2a.MAX_HISTORY_LENGTH:
        raise RpcError(INVALID_PARAMS, f"historyLength cannot exceed {_a2a.MAX_HISTORY_LENGTH}")
    return value


async def get_task(svc: Services, access: Access, assistant_id: str, params: Json) -> Json:
    task_id, context_id = _task_ids(params)
    task = await _task(svc, access, assistant_id, task_id, context_id)
    length = _history_length(params.get("historyLength"))
    status: Json = {"state": task.state, "timestamp": task.run.updated_at.isoformat()}
    message = _a2a.status_message(task.state, task.run, task_id)
    if message is not None:
        status["message"] = message
    found: Json = {"kind": "task", "id": task_id, "contextId": task.context_id, "status": status}
    if length != 0:
        messages = (task.thread.values or {}).get("messages") or []
        found["history"] = _a2a.history(messages, task_id, task.context_id, task.starts, length)
    return found


async def cancel_task(svc: Services, access: Access, assistant_id: str, params: Json) -> Json:
    task_id, context_id = _task_ids(params)
    task = await _task(svc, access, assistant_id, task_id, context_id)
    if task.state in _a2a.TERMINAL or task.run.status not in ("pending", "running"):
        raise RpcError(_a2a.TASK_NOT_CANCELABLE, "Task is not cancelable in its current state")
    with contextlib.suppress(errors.Conflict, errors.NotFound):  # it ended meanwhile
        await cancel(svc, task.context_id, task.run.run_id, "interrupt")
    ended = await reload(svc, task.run) or task.run
    status = {"state": "TASK_STATE_CANCELED", "timestamp": ended.updated_at.isoformat()}
    return {"kind": "task", "id": task_id, "contextId": task.context_id, "status": status}


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class Started:
    run: Run
    task_id: str
    context_id: str
    message: Json  # the caller's message as the task's history has it


async def start(svc: Services, access: Access, assistant_id: str, params: Json) -> Started:
    """Write the run a message makes: a new task, or the next run of the task it names."""
    configuration = params.get("configuration") or {}
    if not isinstance(configuration, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: 'configuration' must be an object")
    _history_length(configuration.get("historyLength"))
    message = params["message"]
    message_id, role, parts = _a2a.check_message(message)
    assistant = await assistant_of(svc, access, assistant_id)
    command: Json | None = None
    if isinstance(message.get("taskId"), str):
        task = await _task(svc, access, assistant_id, message["taskId"], message.get("contextId"))
        if task.state in _a2a.TERMINAL:
            raise RpcError(_a2a.UNSUPPORTED_OPERATION, "A terminal task cannot accept another message")
        context_id, task_id, stamp = task.context_id, task.task_id, {"task_id": task.task_id}
        if task.thread.status == "interrupted":
            command = {"resume": _a2a.resume_value(parts)}
    else:
        context_id, task_id = message.get("contextId") or str(uuid.uuid4()), None
        stamp = {"task_start_id": str(uuid.uuid4())}
        if any(
            isinstance(p, dict) and isinstance(p.get("data"), dict) and "resume" in p["data"] for p in parts
        ):
            raise RpcError(INVALID_PARAMS, "contextId and taskId are required when resuming a task")
    graph_input = _a2a.graph_input(parts, role, message_id, stamp)
    run = await _submit(
        svc, access, assistant, context_id, graph_input, command, stamp, params.get("context")
    )
    task_id = task_id or f"{context_id}:{run.run_id}"
    starts = {stamp["task_start_id"]: task_id} if "task_start_id" in stamp else {}
    said = _a2a.history(graph_input.get("messages", []), task_id, context_id, starts, None)
    return Started(run, task_id, context_id, said[0] if said else {})


async def _submit(
    svc: Services,
    access: Access,
    assistant: Assistant,
    context_id: str,
    graph_input: Json,
    command: Json | None,
    stamp: Json,
    context: Any,
) -> Run:
    body: Json = {
        "assistant_id": assistant.assistant_id,
        "metadata": {"a2a": stamp},
        "if_not_exists": "create",
        "stream_mode": ["values"],
    }
    if command is not None:
        body["command"] = command
    else:
        body["input"] = graph_input
    if isinstance(context, dict):
        body["context"] = context
    try:
        uuid.UUID(context_id)
        run_body = schemas.RunCreate.model_validate(body)
        return await create(svc, run_body, context_id, access)
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"contextId must be a UUID, got {context_id!r}") from None
    except pydantic.ValidationError as exc:
        raise RpcError(INVALID_PARAMS, str(exc.errors()[0]["msg"])) from None
    except errors.GraphrunError as exc:  # refused: a busy context, a resume that does not fit…
        raise RpcError(INVALID_PARAMS, exc.message) from None


async def send(svc: Services, access: Access, assistant_id: str, params: Json) -> Json:
    started = await start(svc, access, assistant_id, params)
    output = await await_output(svc, started.run)
    length = _history_length((params.get("configuration") or {}).get("historyLength"))
    past = await _output_history(svc, started, output, length)
    ended = await reload(svc, started.run) or started.run
    return _a2a.finished_task(started.task_id, started.context_id, ended, output, assistant_id, past)


async def _output_history(
    svc: Services, started: Started, output: Json, length: int | None
) -> list[Json] | None:
    if length == 0:
        return None
    runs = await svc.store.list_runs(started.context_id, None, Page(limit=run_scan_limit))
    starts = {
        str(meta["task_start_id"]): _a2a.task_id_of(started.context_id, run)
        for run in runs
        if (meta := _a2a.a2a_metadata(run)).get("task_start_id")
    }
    found = output.get("messages")
    messages: list[Json] = found if isinstance(found, list) else []
    return _a2a.history(messages, started.task_id, started.context_id, starts, length)


async def stream_events(
    svc: Services, started: Started, assistant_id: str, body: Callable[[str, Json], Json]
) -> AsyncIterator[bytes]:
    """The task as it starts, each new agent message as a ``working`` status update, then the answer's
    artifact and the final status, as SSE; ``body(kind, data)`` is the JSON-RPC answer of one
    (``task``, ``statusUpdate`` or ``artifactUpdate``)."""
    task_id, context_id = started.task_id, started.context_id

    def frame(kind: str, data: Json) -> bytes:
        return sse.frame("message", orjson.dumps(body(kind, data)))

    submitted = {"state": "TASK_STATE_SUBMITTED", "timestamp": _a2a.now()}
    history = [started.message] if started.message else []
    yield frame(
        "task",
        {"kind": "task", "id": task_id, "contextId": context_id, "history": history, "status": submitted},
    )
    seen: set[str] = set()
    async with contextlib.aclosing(
        svc.bus.subscribe(started.run.run_id, "-1", svc.settings.sse_keepalive_s)
    ) as events:
        async for event in events:
            if svc.draining.is_set():
                return
            if event is None:
                current = await reload(svc, started.run)
                if current is None or current.finished:
                    break
                continue
            if event.event != "values":
                continue
            for message in _new_replies(orjson.loads(event.data), seen):
                update = _status_update(task_id, context_id, "TASK_STATE_WORKING", False)
                update["status"]["message"] = _a2a.agent_message(message, task_id, context_id)
                yield frame("statusUpdate", update)
    output = await await_output(svc, started.run)
    ended = await reload(svc, started.run) or started.run
    final = _a2a.finished_task(task_id, context_id, ended, output, assistant_id, None)
    for artifact in final.get("artifacts", []):
        update = {
            "taskId": task_id,
            "contextId": context_id,
            "artifact": artifact,
            "append": False,
            "lastChunk": True,
        }
        yield frame("artifactUpdate", update)
    last = _status_update(task_id, context_id, final["status"]["state"], True)
    last["status"].update(final["status"])
    yield frame("statusUpdate", last)


def _status_update(task_id: str, context_id: str, state: str, final: bool) -> Json:
    return {
        "taskId": task_id,
        "contextId": context_id,
        "status": {"state": state, "timestamp": _a2a.now()},
        "final": final,
    }


def _new_replies(values: Any, seen: set[str]) -> list[list[Json]]:
    """The parts of agent messages in ``values`` not sent yet, after the last user message."""
    messages = values.get("messages") if isinstance(values, dict) else None
    if not isinstance(messages, list):
        return []
    replies = []
    for message in _a2a.current_turn(messages):
        key = str(message.get("id"))
        parts = _a2a.text_parts(message.get("content"))
        if key not in seen and parts and _a2a.is_agent(message):
            seen.add(key)
            replies.append(parts)
    return replies
