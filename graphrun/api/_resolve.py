"""Ids in paths and bodies: UUID checks and assistant resolution, as the official server does them."""

from __future__ import annotations

import uuid

from graphrun import errors
from graphrun.api.authz import Access, as_uuid, in_scope
from graphrun.api.deps import Services
from graphrun.models import Assistant, Run, Thread, system_assistant_id
from graphrun.types import Json


def require_uuid(value: str, what: str) -> str:
    """The official server only takes UUIDs as ids (422 otherwise); normalize their spelling."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise errors.InvalidRequest(f"{what} must be a UUID, got {value!r}") from exc


async def resolve_assistant(
    svc: Services,
    assistant_id: str,
    access: Access | None = None,
    action: str = "read",
    value: Json | None = None,
) -> Assistant:
    """A graph id stands for its system assistant; anything else must be an assistant's UUID. With
    ``access``, one the caller may not ``action`` is missing, as the official server answers it;
    ``value`` is what the handler sees (and may change)."""
    found = await _assistant(svc, assistant_id)
    if access is not None:
        await check_assistant(access, found, action, value)
    return found


async def check_assistant(
    access: Access, assistant: Assistant, action: str = "read", value: Json | None = None
) -> None:
    """An assistant the caller may not ``action`` is missing (404)."""
    if not access.on:
        return
    value = {} if value is None else value
    value.setdefault("assistant_id", as_uuid(assistant.assistant_id))
    scope = await access.scope("assistants", action, value)
    if not in_scope(scope, assistant.metadata):
        raise errors.AssistantNotFound(f"Assistant {assistant.assistant_id} not found")


async def _assistant(svc: Services, assistant_id: str) -> Assistant:
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


async def owned_thread(
    svc: Services, access: Access, thread_id: str, action: str = "read", value: Json | None = None
) -> Thread:
    """The thread, if the caller may ``action`` it; one it may not is missing (404, never 403: an id
    says nothing of threads one cannot see). ``value`` is what the handler sees (and may change)."""
    value = {} if value is None else value
    value.setdefault("thread_id", as_uuid(thread_id))
    scope = await access.scope("threads", action, value)
    thread = await svc.store.get_thread(thread_id)
    if not in_scope(scope, thread.metadata):
        raise errors.ThreadNotFound(f"Thread {thread_id} not found")
    return thread


async def owned_run(svc: Services, access: Access, thread_id: str, run_id: str, action: str = "read") -> Run:
    """A run of a thread the caller may ``action``: runs are reached through their thread's access, as
    the official server checks them."""
    if access.on:
        await owned_thread(svc, access, thread_id, action)
    return await svc.store.get_run(thread_id, run_id)


async def unless_foreign(svc: Services, access: Access, thread_id: str) -> bool:
    """Refuse (404) a thread that exists and that the caller may not read; a thread not yet written
    passes (a stream opened before the run that creates the thread). True when the thread was found
    (and is the caller's), False when it is not written yet: whoever holds on must check again once it
    is (``owned_thread``), since another owner may be the one to create it."""
    if not access.on:
        return True
    try:
        await owned_thread(svc, access, thread_id)
    except errors.ThreadNotFound:
        try:
            await svc.store.get_thread(thread_id)
        except errors.ThreadNotFound:
            return False
        raise
    return True
