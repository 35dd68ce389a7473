"""Shared type aliases. Imports nothing from graphrun."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

RunId: TypeAlias = str
ThreadId: TypeAlias = str
AssistantId: TypeAlias = str
GraphId: TypeAlias = str
Json: TypeAlias = dict[str, Any]

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
IfNotExists = Literal["create", "reject"]
OnCompletion = Literal["delete", "keep"]
OnDisconnect = Literal["cancel", "continue"]
CancelAction = Literal["interrupt", "rollback"]
Durability = Literal["sync", "async", "exit"]

TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"success", "error", "timeout", "interrupted"})
INFLIGHT_RUN_STATUSES: frozenset[str] = frozenset({"pending", "running"})

# The stream modes a client may ask for. `messages-tuple` is the SDK's name for LangGraph's
# `messages` mode; `events` is LangChain's astream_events.
STREAM_MODES: frozenset[str] = frozenset(
    {"values", "updates", "messages", "messages-tuple", "custom", "debug", "tasks", "checkpoints", "events"}
)


@dataclass(frozen=True)
class Persistence:
    """What a graph is compiled with: the checkpointer (thread state) and the long-term store."""

    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
