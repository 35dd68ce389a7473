"""LangGraph's stream parts as the official server names and shapes them on the wire.

``graph.astream`` yields ``(namespace, mode, chunk)``; a client asks for stream modes in the official
server's vocabulary. This module maps one to the other, per run (``WireEvents`` keeps the state the
``messages`` mode needs), and knows nothing about buses or HTTP: the runner publishes what it returns.

The client's modes differ from LangGraph's in three places:

* ``messages-tuple`` is LangGraph's ``messages`` mode as is; the events are named ``messages`` and carry
  ``[chunk, metadata]``.
* ``messages`` is the official server's older message protocol, built on LangGraph's ``messages`` mode:
  ``messages/metadata`` the first time a message id is seen, then ``messages/partial`` with the message
  accumulated so far for each streamed chunk, or ``messages/complete`` for a message that arrives whole.
* ``events`` is LangChain's ``astream_events`` (v2); the root run's ``on_chain_stream`` events carry the
  other modes' parts and are unpacked, every other event goes out as ``events``.

``debug`` checkpoint payloads gain the ``checkpoint``/``parent_checkpoint`` objects the official server adds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message
from langchain_core.runnables import RunnableConfig

from graphrun.types import Json

# Client modes that LangGraph does not know by that name.
_LANGGRAPH_MODE = {"messages-tuple": "messages", "events": None}


def langgraph_modes(client_modes: Iterable[str]) -> set[str]:
    """The ``stream_mode`` to ask LangGraph for, to serve the client's modes. ``values`` is always
    streamed (the runner reads a plain run's final state from it)."""
    modes = {"values"}
    for mode in client_modes:
        mapped = _LANGGRAPH_MODE.get(mode, mode)
        if mapped is not None:
            modes.add(mapped)
    return modes


def checkpoint_json(config: RunnableConfig | None) -> Json | None:
    """A LangGraph config's checkpoint coordinates, as the official server writes a checkpoint."""
    if not config:
        return None
    conf = config.get("configurable", {})
    return {
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf.get("checkpoint_id"),
        "checkpoint_map": conf.get("checkpoint_map"),
    }


class WireEvents:
    """Turns one run's stream parts into ``(event name, data)`` pairs for the modes the client asked for."""

    def __init__(self, client_modes: Iterable[str]) -> None:
        self._modes = frozenset(client_modes)
        self._seen: set[str] = set()  # `messages` mode: ids whose metadata was sent
        self._so_far: dict[str, BaseMessageChunk] = {}  # and each streamed message accumulated so far

    @property
    def wants_events(self) -> bool:
        return "events" in self._modes

    def part(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> Iterator[tuple[str, Any]]:
        suffix = "".join(f"|{n}" for n in namespace)
        if mode == "messages":
            if "messages-tuple" in self._modes:
                yield f"messages{suffix}", list(chunk)
            if "messages" in self._modes:
                yield from self._message_frames(*chunk)
            return
        if mode not in self._modes:
            return
        if mode == "debug" and isinstance(chunk, dict) and chunk.get("type") == "checkpoint":
            chunk = {**chunk, "payload": _debug_checkpoint(chunk.get("payload"))}
        yield f"{mode}{suffix}", chunk

    def _message_frames(self, message: BaseMessage, metadata: Json) -> Iterator[tuple[str, Any]]:
        key = message.id or ""
        if key not in self._seen:
            self._seen.add(key)
            yield "messages/metadata", {key: {"metadata": metadata}}
        if isinstance(message, BaseMessageChunk):
            previous = self._so_far.get(key)
            so_far = message if previous is None else previous + message
            self._so_far[key] = so_far
            yield "messages/partial", [so_far]
        else:
            yield "messages/complete", [message_chunk_to_message(message)]


def _debug_checkpoint(payload: Any) -> Any:
    if not isinstance(payload, dict):
        return payload
    tasks = [_debug_task(t) for t in payload.get("tasks", [])]
    return {
        **payload,
        "checkpoint": checkpoint_json(payload.get("config")),
        "parent_checkpoint": checkpoint_json(payload.get("parent_config")),
        "tasks": tasks,
    }


def _debug_task(task: Any) -> Any:
    if not isinstance(task, dict) or not isinstance(task.get("state"), dict):
        return task
    state = task["state"]
    if not state.get("configurable"):
        return task
    rest = {k: v for k, v in task.items() if k != "state"}
    return {**rest, "checkpoint": state["configurable"]}
