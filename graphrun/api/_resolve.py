"""Ids in paths and bodies: UUID checks and assistant resolution, as the official server does them."""

from __future__ import annotations

import uuid

from graphrun import errors
from graphrun.api.deps import Services
from graphrun.models import Assistant, system_assistant_id
from graphrun.types import Json


def require_uuid(value: str, what: str) -> str:
    """The official server only takes UUIDs as ids (422 otherwise); normalize their spelling."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise errors.InvalidRequest(f"{what} must be a UUID, got {value!r}") from exc


async def resolve_assistant(svc: Services, assistant_id: str) -> Assistant:
    """A graph id stands for its system assistant; anything else must be an assistant's UUID."""
    if assistant_id in svc.graphs:
        return await svc.store.get_assistant(system_assistant_id(assistant_id))
    try:
        canonical = str(uuid.UUID(assistant_id))
    except ValueError as exc:
        graphs = ", ".join(svc.graphs.graph_ids)
        raise errors.InvalidRequest(
            f"Invalid assistant: '{assistant_id}'. Must be either: a valid assistant UUID, "
            f"or one of the registered graphs: {graphs}"
        ) from exc
    return await svc.store.get_assistant(canonical)


def require_graph(svc: Services, graph_id: str) -> str:
    """As the official server: an unknown graph id is a 404 that lists the configured graphs."""
    if graph_id not in svc.graphs:
        raise errors.NotFound(f"Graph '{graph_id}' not found. Expected one of: {svc.graphs.graph_ids}")
    return graph_id


async def require_checkpoint(svc: Services, thread_id: str, checkpoint: Json | None) -> None:
    """A run or a state update from a given checkpoint must name one the thread has: LangGraph would
    quietly start a fresh state from an unknown id, losing the thread's history at its head."""
    checkpoint_id = (checkpoint or {}).get("checkpoint_id")
    if not checkpoint_id:
        return
    configurable = {
        "thread_id": thread_id,
        "checkpoint_ns": (checkpoint or {}).get("checkpoint_ns") or "",
        "checkpoint_id": checkpoint_id,
    }
    if await svc.graphs.persistence.checkpointer.aget_tuple({"configurable": configurable}) is None:
        raise errors.NotFound(f"Thread {thread_id} has no checkpoint {checkpoint_id!r}")
