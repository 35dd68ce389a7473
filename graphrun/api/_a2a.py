"""A2A (Agent2Agent, JSON-RPC 2.0) shapes, as the official server (langgraph-api 0.16.7) gives them:
what ``routes/a2a.py`` answers is built here, from runs, threads and their messages.

* A task is a run: its id is ``<context id>:<run id>``, its context a thread. A message that continues
  a task (``taskId``) makes a new run of the same task: the run's ``metadata.a2a.task_id`` says which.
  A new task's first run carries ``metadata.a2a.task_start_id`` instead (its id is known only once the
  run is written), and so do the messages it put on the thread (``additional_kwargs.a2a``): that is
  how a thread's history is told apart by task.
* States: the official server's v1.0 names (``TASK_STATE_COMPLETED``, ``ROLE_AGENT``); the A2A 0.3
  method names (``message/send`` …) are answered in the 0.3 spelling (``completed``, ``agent``, a
  task not wrapped in ``{"task": …}``), as there (``spec_format``).
* A run that stopped at ``interrupt()`` (it ends ``success`` and its thread is ``interrupted``) is
  ``TASK_STATE_INPUT_REQUIRED``, with the interrupts in an ``Interrupt`` artifact; a cancelled run is
  ``TASK_STATE_CANCELED``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from graphrun.models import Run, Thread
from graphrun.types import Json

# JSON-RPC and A2A error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
UNSUPPORTED_OPERATION = -32004
CONTENT_TYPE_NOT_SUPPORTED = -32005

# The A2A 0.3 method names, answered as their 1.0 names are (in the 0.3 spelling).
ALIASES = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/cancel": "CancelTask",
}
METHODS = frozenset({"SendMessage", "SendStreamingMessage", "GetTask", "CancelTask"})
MAX_HISTORY_LENGTH = 10
TERMINAL = frozenset({"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"})

_STATES = {
    "pending": "TASK_STATE_SUBMITTED",
    "running": "TASK_STATE_WORKING",
    "success": "TASK_STATE_COMPLETED",
    "interrupted": "TASK_STATE_CANCELED",  # cancelled; an interrupt() ends the run `success`
    "error": "TASK_STATE_FAILED",
    "timeout": "TASK_STATE_FAILED",
}
_LEGACY_ROLES = {"ROLE_USER": "user", "ROLE_AGENT": "agent"}
_INPUT_ROLES = {
    "user": "ROLE_USER",
    "agent": "ROLE_AGENT",
    "ROLE_USER": "ROLE_USER",
    "ROLE_AGENT": "ROLE_AGENT",
}


class RpcError(Exception):
    """A JSON-RPC error answer: ``code`` and the message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(code: int, message: str, request_id: Any = None) -> Json:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def spec_format(data: Any) -> Any:
    """The A2A 0.3 spelling of an answer: lower-case roles and states (``input-required``), a task
    not wrapped in ``{"task": …}``."""
    if isinstance(data, dict):
        out: Json = {}
        for key, value in data.items():
            if key == "role" and isinstance(value, str):
                out[key] = _LEGACY_ROLES.get(value, value)
            elif key == "state" and isinstance(value, str) and value.startswith("TASK_STATE_"):
                out[key] = value.removeprefix("TASK_STATE_").lower().replace("_", "-")
            elif key == "result" and isinstance(value, dict) and list(value) == ["task"]:
                out[key] = spec_format(value["task"])
            else:
                out[key] = spec_format(value)
        return out
    if isinstance(data, list):
        return [spec_format(item) for item in data]
    return data


# ---------------------------------------------------------------- ids and states


def task_id_of(context_id: str, run: Run) -> str:
    stored = a2a_metadata(run).get("task_id")
    return stored if isinstance(stored, str) and stored else f"{context_id}:{run.run_id}"


def parse_task_id(task_id: str) -> tuple[str, str]:
    """(context id, run id) of ``<context id>:<run id>``; a bare run id has no context."""
    context_id, _, run_id = task_id.rpartition(":")
    return context_id, run_id


def a2a_metadata(run: Run) -> Json:
    found = run.metadata.get("a2a")
    return found if isinstance(found, dict) else {}


def state_of(run: Run, thread: Thread | None) -> str:
    """The task state of its latest run; ``thread`` when that run is the thread's latest."""
    if run.status == "success" and thread is not None and thread.status == "interrupted":
        return "TASK_STATE_INPUT_REQUIRED"
    return _STATES.get(run.status, "TASK_STATE_SUBMITTED")


def now() -> str:
    return datetime.now(UTC).isoformat()


# ---------------------------------------------------------------- messages


def check_message(message: Any) -> tuple[str, str, list[Json]]:
    """(message id, role, parts) of a ``SendMessage`` message; RpcError says what is wrong."""
    if not isinstance(message, dict) or not message:
        raise RpcError(INVALID_PARAMS, "Missing or invalid 'message' in params")
    message_id, role, parts = message.get("messageId"), message.get("role"), message.get("parts", [])
    if not message_id:
        raise RpcError(INVALID_PARAMS, "Missing required 'messageId' in message")
    if not role:
        raise RpcError(INVALID_PARAMS, "Missing required 'role' in message")
    if not isinstance(parts, list):
        raise RpcError(INVALID_PARAMS, "Invalid params: 'parts' must be an array")
    if not parts:
        raise RpcError(INVALID_PARAMS, "Message must contain at least one part")
    for name in ("contextId", "taskId"):
        if message.get(name) is not None and not isinstance(message.get(name), str):
            raise RpcError(INVALID_PARAMS, f"{name} must be a string")
    return str(message_id), _INPUT_ROLES.get(str(role), str(role)), parts


def graph_input(parts: list[Json], role: str, message_id: str, stamp: Json) -> Json:
    """The run's input: text parts as messages (each stamped with its task), data parts' objects
    merged into the input. File parts are not taken (RpcError)."""
    messages: list[Json] = []
    data: Json = {}
    kind = "human" if role == "ROLE_USER" else "assistant"
    for part in parts:
        if not isinstance(part, dict):
            raise RpcError(CONTENT_TYPE_NOT_SUPPORTED, "Each message part must be an object.")
        present = [k for k in ("text", "file", "data") if k in part]
        if len(present) > 1:
            raise RpcError(
                CONTENT_TYPE_NOT_SUPPORTED,
                "Each message part must contain exactly one of 'text', 'file', or 'data'. "
                f"Got multiple: {present}.",
            )
        if "text" in part:
            messages.append(
                {"role": kind, "content": part["text"], "id": message_id, "additional_kwargs": {"a2a": stamp}}
            )
        elif "data" in part and isinstance(part["data"], dict):
            data.update(part["data"])
        elif "data" in part:
            raise RpcError(
                CONTENT_TYPE_NOT_SUPPORTED, "DataPart must contain a JSON object in the 'data' field"
            )
        else:
            raise RpcError(
                CONTENT_TYPE_NOT_SUPPORTED,
                "Unsupported part type: graphrun's A2A takes 'text' and 'data' parts.",
            )
    if not messages and not data:
        raise RpcError(
            CONTENT_TYPE_NOT_SUPPORTED, "Message must contain at least one valid text or data part"
        )
    return {**({"messages": messages} if messages else {}), **data}


def resume_value(parts: list[Json]) -> Any:
    """What a message answers an interrupt with: a data part's ``resume``, else its text."""
    resumes = [
        p["data"]["resume"] for p in parts if isinstance(p.get("data"), dict) and "resume" in p["data"]
    ]
    if len(resumes) > 1:
        raise RpcError(INVALID_PARAMS, "Only one resume value is allowed in data parts")
    if resumes:
        return resumes[0]
    texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
    return "\n".join(texts) if texts else None


def _role(message: Json) -> str | None:
    kind = str(message.get("type") or message.get("role") or "").lower()
    if kind in ("human", "user"):
        return "ROLE_USER"
    if kind in ("ai", "assistant"):
        return "ROLE_AGENT"
    return None  # system and tool messages are not said to the other agent


def text_parts(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"kind": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [
            part for item in content for part in text_parts(item if isinstance(item, str) else _block(item))
        ]
    return []


def _block(item: Any) -> str:
    return str(item.get("text", "")) if isinstance(item, dict) and item.get("type") == "text" else ""


def history(
    messages: list[Json], task_id: str, context_id: str, starts: dict[str, str], length: int | None
) -> list[Json]:
    """The thread's user and agent messages as A2A messages, each with the task it belongs to."""
    current: str | None = task_id
    out: list[Json] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        stamp = (message.get("additional_kwargs") or {}).get("a2a") or {}
        if isinstance(stamp.get("task_id"), str):
            current = stamp["task_id"]
        elif isinstance(stamp.get("task_start_id"), str):
            current = starts.get(stamp["task_start_id"])
        role = _role(message)
        parts = text_parts(message.get("content"))
        if current is None or role is None or (role == "ROLE_AGENT" and not parts):
            continue
        out.append(
            _message(role, parts or [{"kind": "text", "text": ""}], current, context_id, message.get("id"))
        )
    if length is None:
        return out
    return out[-length:] if length else []


def _message(
    role: str, parts: list[Json], task_id: str, context_id: str | None, message_id: Any = None
) -> Json:
    found: Json = {
        "kind": "message",
        "role": role,
        "parts": parts,
        "messageId": message_id or str(uuid.uuid4()),
        "taskId": task_id,
    }
    if context_id is not None:
        found["contextId"] = context_id
    return found


def agent_message(parts: list[Json], task_id: str, context_id: str | None) -> Json:
    return _message("ROLE_AGENT", parts, task_id, context_id)


def current_turn(messages: list[Any]) -> list[Json]:
    """The messages after the last user message."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], dict) and _role(messages[index]) == "ROLE_USER":
            return [m for m in messages[index + 1 :] if isinstance(m, dict)]
    return [m for m in messages if isinstance(m, dict)]


def is_agent(message: Json) -> bool:
    return _role(message) == "ROLE_AGENT"


def reply_parts(output: Json) -> list[Json]:
    """The agent's answer in a run's output: its last agent message after the last user message."""
    messages = output.get("messages")
    if "__error__" in output or not isinstance(messages, list) or not messages:
        return [{"kind": "text", "text": str(output)}]
    for message in reversed(current_turn(messages)):
        if is_agent(message):
            parts = text_parts(message.get("content"))
            if parts:
                return parts
    return [{"kind": "text", "text": ""}]


# ---------------------------------------------------------------- tasks and artifacts


def response_artifact(parts: list[Json], assistant_id: str) -> Json:
    return {
        "artifactId": str(uuid.uuid4()),
        "name": "Assistant Response",
        "description": f"Response from assistant {assistant_id}",
        "parts": parts,
    }


def interrupt_artifact(interrupts: list[Json]) -> Json:
    parts = []
    for found in interrupts:
        data = {"id": found.get("id"), "value": found.get("value")}
        if found.get("response_schema") is not None:
            data["response_schema"] = found["response_schema"]
        parts.append({"kind": "data", "data": data})
    return {
        "artifactId": str(uuid.uuid4()),
        "name": "Interrupt",
        "description": "Agent requires input to continue",
        "parts": parts,
    }


def finished_task(
    task_id: str, context_id: str, run: Run, output: Json, assistant_id: str, past: list[Json] | None
) -> Json:
    """The task a finished run answers ``SendMessage`` with (``past``: its history, None for none)."""
    task: Json = {"kind": "task", "id": task_id, "contextId": context_id}
    if past is not None:
        task["history"] = past
    if run.status == "interrupted":  # cancelled
        task["status"] = {"state": "TASK_STATE_CANCELED", "timestamp": now()}
    elif "__error__" in output:
        text = f"Error executing assistant: {(output['__error__'] or {}).get('error')}"
        task["status"] = {
            "state": "TASK_STATE_FAILED",
            "message": agent_message([{"kind": "text", "text": text}], task_id, context_id),
        }
    elif output.get("__interrupt__"):
        task["status"] = {"state": "TASK_STATE_INPUT_REQUIRED", "timestamp": now()}
        task["artifacts"] = [interrupt_artifact(output["__interrupt__"])]
    else:
        task["status"] = {"state": "TASK_STATE_COMPLETED", "timestamp": now()}
        task["artifacts"] = [response_artifact(reply_parts(output), assistant_id)]
    return task


def status_message(state: str, run: Run, task_id: str) -> Json | None:
    """What ``GetTask`` says beside a finished state."""
    if state == "TASK_STATE_COMPLETED":
        return agent_message([{"kind": "text", "text": "Task completed successfully"}], task_id, None)
    if state == "TASK_STATE_FAILED":
        return agent_message(
            [{"kind": "text", "text": f"Task failed with status: {run.status}"}], task_id, None
        )
    return None


# ---------------------------------------------------------------- the agent card


def agent_card(
    *, name: str, description: str | None, assistant_id: str, base_url: str, input_schema: Json, version: str
) -> Json:
    """An assistant's agent card: one skill (the assistant), JSON-RPC at ``/a2a/{assistant_id}``."""
    description = description or f"{name} assistant"
    properties = input_schema.get("properties") or {}
    modes = ["application/json", "text/plain"]
    url = f"{base_url}/a2a/{assistant_id}"
    return {
        "name": name,
        "description": description,
        "url": url,
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "capabilities": {"streaming": True, "pushNotifications": False, "stateTransitionHistory": False},
        "defaultInputModes": modes,
        "defaultOutputModes": modes,
        "skills": [
            {
                "id": f"{assistant_id}-main",
                "name": f"{name} Capabilities",
                "description": description,
                "tags": ["assistant", "langgraph"],
                "examples": [],
                "inputModes": modes,
                "outputModes": modes,
                "metadata": {
                    "inputSchema": {
                        "required": input_schema.get("required") or [],
                        "properties": sorted(properties),
                        "supportsA2A": "messages" in properties,
                    }
                },
            }
        ],
        "version": version,
    }
