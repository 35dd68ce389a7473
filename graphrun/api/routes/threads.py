"""``/threads``: conversations. A thread's state lives in the checkpointer; its row in the control store."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import Command, StateUpdate
from pydantic import ValidationError

from graphrun import checkpointer, encoding, errors
from graphrun.api import schemas
from graphrun.api._resolve import owned_thread, require_checkpoint, require_uuid
from graphrun.api._runs import delete_thread_now
from graphrun.api._state import empty_state, state_json
from graphrun.api.authz import AccessDep, as_uuid, in_scope
from graphrun.api.deps import Services, Svc
from graphrun.graphs import AccessContext, thread_interrupts
from graphrun.models import Thread, new_id
from graphrun.stores.base import Page
from graphrun.types import Json, ThreadStatus
from graphrun.wire import checkpoint_json

router = APIRouter(prefix="/threads", tags=["threads"])
log = structlog.get_logger("graphrun.threads")


@router.post("")
async def create_thread(body: schemas.ThreadCreate, svc: Svc, access: AccessDep) -> Json:
    thread_id = require_uuid(body.thread_id, "thread_id") if body.thread_id else new_id()
    metadata = body.metadata
    if access.on:
        value: Json = {
            "thread_id": as_uuid(thread_id),
            "metadata": dict(metadata),
            "if_exists": body.if_exists,
            "ttl": body.ttl.model_dump() if body.ttl else None,
        }
        scope = await access.scope("threads", "create", value)
        metadata = value["metadata"]
        if body.thread_id and body.if_exists == "do_nothing":
            with contextlib.suppress(errors.ThreadNotFound):  # another's thread is not handed over
                if not in_scope(scope, (await svc.store.get_thread(thread_id)).metadata):
                    raise errors.AlreadyExists(f"Thread {thread_id} already exists")
    if body.supersteps:
        return schemas.thread_json(await _create_with_supersteps(svc, thread_id, metadata, body))
    thread = await svc.store.create_thread(
        thread_id, metadata, body.if_exists, body.ttl_minutes, body.ttl_strategy
    )
    return schemas.thread_json(thread)


async def _create_with_supersteps(
    svc: Services, thread_id: str, metadata: Json, body: schemas.ThreadCreate
) -> Thread:
    """Create the thread and write its state as the supersteps say (each a list of updates applied as one
    step, as ``graph.abulk_update_state``): how a thread is copied between deployments. The graph is
    ``metadata.graph_id``'s. If the graph refuses an update, the thread is deleted again and the answer is
    422: no half-written thread is left."""
    graph_id = metadata.get("graph_id")
    if not isinstance(graph_id, str) or graph_id not in svc.graphs:
        raise errors.InvalidRequest(
            "supersteps need metadata.graph_id naming a configured graph (the graph whose nodes they name); "
            f"got {graph_id!r}"
        )
    with contextlib.suppress(errors.ThreadNotFound):
        await svc.store.get_thread(thread_id)
        raise errors.AlreadyExists(
            f"Thread {thread_id} already exists; supersteps apply only to a thread the request creates"
        )
    thread = await svc.store.create_thread(thread_id, metadata, "raise", body.ttl_minutes, body.ttl_strategy)
    steps = [
        [StateUpdate(_update_value(u), u.as_node) for u in step.updates] for step in body.supersteps or ()
    ]
    try:
        async with svc.graphs.graph(graph_id, access="threads.update") as graph:
            try:
                await graph.abulk_update_state(_config(thread_id, None), steps)
            except errors.GraphrunError:
                raise
            except Exception as exc:  # an unknown node, values its channels do not take
                raise errors.InvalidRequest(f"cannot apply supersteps: {type(exc).__name__}: {exc}") from exc
            head = await graph.aget_state(_config(thread_id, None))
        interrupts = thread_interrupts(head)
        status: ThreadStatus = "interrupted" if head.next or interrupts else "idle"
        await svc.store.set_thread_state(thread_id, encoding.jsonable(head.values), interrupts, status)
    except BaseException:
        await checkpointer.delete_thread(svc.store, svc.graphs.persistence.checkpointer, thread_id)
        raise
    return await svc.store.get_thread(thread.thread_id)


def _update_value(update: schemas.SuperstepUpdate) -> Any:
    if update.command is None:
        return update.values
    return Command(**update.command.model_dump(exclude_none=True))


@router.post("/prune")
async def prune_threads(body: schemas.ThreadPrune, svc: Svc, access: AccessDep) -> Json:
    """Delete the threads (``delete``) or prune each to its latest checkpoints (``keep_latest``); answer
    how many were pruned. A thread that does not exist is skipped; with auth, one the caller may not
    delete makes the whole request 404 and nothing is pruned (as the official server); ``keep_latest``
    on a thread with a ``DeltaChannel`` makes it 409, nothing pruned."""
    ids = [require_uuid(i, "thread_ids[]") for i in body.thread_ids]
    threads: dict[str, Thread] = {}
    for tid in dict.fromkeys(ids):
        with contextlib.suppress(errors.ThreadNotFound):
            threads[tid] = await svc.store.get_thread(tid)
    if access.on:
        scope = await access.scope("threads", "delete", {"thread_ids": [as_uuid(i) for i in ids]})
        if scope is not None and (
            len(threads) < len(set(ids)) or any(not in_scope(scope, t.metadata) for t in threads.values())
        ):
            raise errors.NotFound("At least one thread not found or not authorized")
    if body.strategy == "keep_latest":  # refused whole before anything is pruned
        for tid in threads:
            await checkpointer.refuse_delta_thread(svc.graphs.persistence.checkpointer, tid)
    pruned = 0
    for tid in threads:
        if body.strategy == "delete":
            await delete_thread_now(svc, tid)
        elif not await _pruned_to_latest(svc, tid):
            continue
        pruned += 1
    return {"pruned_count": pruned}


async def _pruned_to_latest(svc: Services, thread_id: str) -> bool:
    """``keep_latest`` on one thread, unless a run is executing on it (looked at just before) or its saver
    cannot prune it (a concurrent prune): then it is left as it is, logged, and not counted. A thread
    with a ``DeltaChannel`` was refused before (409)."""
    try:
        if (await svc.store.get_thread(thread_id)).status == "busy":
            log.info("prune_skipped_busy_thread", thread_id=thread_id)
            return False
        await checkpointer.keep_latest(svc.graphs.persistence.checkpointer, thread_id)
    except errors.ThreadNotFound:
        return False  # deleted meanwhile
    except Exception as exc:
        log.warning("prune_failed", thread_id=thread_id, error=type(exc).__name__, reason=str(exc))
        return False
    return True


@router.post("/search")
async def search_threads(body: schemas.ThreadSearch, svc: Svc, access: AccessDep) -> list[Json]:
    ids = [require_uuid(i, "ids[]") for i in body.ids] if body.ids is not None else None
    page = Page(body.limit, body.offset, body.sort_by, body.sort_order or "desc")
    scope = await access.scope("threads", "search", _search_value(body, body.limit, body.offset))
    found = await svc.store.search_threads(body.metadata, body.values, body.status, ids, page, scope=scope)
    return schemas.select([schemas.thread_json(t) for t in found], body.select, schemas.THREAD_FIELDS)


@router.post("/count")
async def count_threads(body: schemas.ThreadCount, svc: Svc, access: AccessDep) -> int:
    scope = await access.scope("threads", "search", _search_value(body, None, None))
    return await svc.store.count_threads(body.metadata, body.values, body.status, scope=scope)


def _search_value(
    body: schemas.ThreadSearch | schemas.ThreadCount, limit: int | None, offset: int | None
) -> Json:
    """A thread search as a ``threads.search`` handler sees it."""
    return {
        "metadata": dict(body.metadata or {}),
        "values": body.values,
        "status": body.status,
        "limit": limit,
        "offset": offset,
    }


@router.get("/{thread_id}")
async def get_thread(thread_id: uuid.UUID, svc: Svc, access: AccessDep) -> Json:
    return schemas.thread_json(await owned_thread(svc, access, str(thread_id)))


@router.get("/{thread_id}/storage")
async def get_thread_storage(thread_id: uuid.UUID, svc: Svc, access: AccessDep) -> Json:
    """What the thread's checkpoints weigh (``checkpointer.thread_storage``)."""
    await owned_thread(svc, access, str(thread_id))
    saver = svc.graphs.persistence.checkpointer
    return {"thread_id": str(thread_id), **await checkpointer.thread_storage(saver, str(thread_id))}


@router.patch("/{thread_id}")
async def update_thread(thread_id: uuid.UUID, body: schemas.ThreadPatch, svc: Svc, access: AccessDep) -> Json:
    value: Json = {"metadata": dict(body.metadata)}
    await owned_thread(svc, access, str(thread_id), "update", value)
    return schemas.thread_json(
        await svc.store.update_thread(str(thread_id), value["metadata"], body.ttl_minutes, body.ttl_strategy)
    )


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(thread_id: uuid.UUID, svc: Svc, access: AccessDep) -> Response:
    """Cancel what runs on the thread and let it stop, then delete the thread, its runs and checkpoints
    (in that order, so that no run writes a checkpoint after they are gone)."""
    tid = str(thread_id)
    await owned_thread(svc, access, tid, "delete")
    await delete_thread_now(svc, tid)
    return Response(status_code=204)


@router.post("/{thread_id}/copy")
async def copy_thread(thread_id: uuid.UUID, svc: Svc, access: AccessDep) -> Json:
    source = await owned_thread(svc, access, str(thread_id))  # the copy keeps its metadata, owner too
    target_id = new_id()
    saver = svc.graphs.persistence.checkpointer
    try:
        await checkpointer.copy_thread(saver, source.thread_id, target_id)
        copied = await svc.store.copy_thread(source.thread_id, target_id)
    except BaseException:
        await saver.adelete_thread(target_id)  # no half-copied thread is left behind
        raise
    return schemas.thread_json(copied)


@router.get("/{thread_id}/state")
async def get_state(*, thread_id: uuid.UUID, subgraphs: bool = False, svc: Svc, access: AccessDep) -> Json:
    await owned_thread(svc, access, str(thread_id))
    return await _state_at(svc, str(thread_id), None, subgraphs)


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    *, thread_id: uuid.UUID, checkpoint_id: str, subgraphs: bool = False, svc: Svc, access: AccessDep
) -> Json:
    await owned_thread(svc, access, str(thread_id))
    return await _state_at(svc, str(thread_id), {"checkpoint_id": checkpoint_id}, subgraphs)


@router.post("/{thread_id}/state/checkpoint")
async def post_state_at(
    thread_id: uuid.UUID, body: schemas.ThreadStateAt, svc: Svc, access: AccessDep
) -> Json:
    await owned_thread(svc, access, str(thread_id))
    return await _state_at(svc, str(thread_id), body.checkpoint.fields(), body.subgraphs)


@router.post("/{thread_id}/state")
async def update_state(
    thread_id: uuid.UUID, body: schemas.ThreadStateUpdate, svc: Svc, access: AccessDep
) -> Json:
    """Write ``values`` as if ``as_node`` had returned them; the thread row follows the new head."""
    thread = await owned_thread(svc, access, str(thread_id), "update")
    if thread.status == "busy":
        raise errors.Conflict(
            f"Thread {thread.thread_id} is busy: a run is executing; update its state afterwards"
        )
    checkpoint = body.checkpoint.fields() if body.checkpoint else {}
    if body.checkpoint_id:
        checkpoint["checkpoint_id"] = body.checkpoint_id
    await require_checkpoint(svc, thread.thread_id, checkpoint)
    async with _thread_graph(svc, thread, "threads.update") as graph:
        config = _config(thread.thread_id, checkpoint)
        try:
            new_config = await graph.aupdate_state(config, body.values, as_node=body.as_node)
        except errors.GraphrunError:
            raise
        except Exception as exc:
            # The graph refused the values: a shape its channels or reducers do not take, an unknown
            # node. Nothing was written (LangGraph writes the checkpoint only once the update applies).
            raise errors.InvalidRequest(f"cannot update state: {type(exc).__name__}: {exc}") from exc
        head = await graph.aget_state(_config(thread.thread_id, None))
    interrupts = thread_interrupts(head)
    status: ThreadStatus = "interrupted" if head.next or interrupts else "idle"
    await svc.store.set_thread_state(thread.thread_id, encoding.jsonable(head.values), interrupts, status)
    update = {"state": state_json(head), "thread_id": thread.thread_id}
    await svc.bus.publish_thread(thread.thread_id, "state_update", update)
    return {"checkpoint": checkpoint_json(new_config)}


@router.get("/{thread_id}/history")
async def get_history_get(
    *,
    thread_id: uuid.UUID,
    limit: int = Query(10, ge=1, le=1000),
    before: str | None = None,
    svc: Svc,
    access: AccessDep,
) -> list[Json]:
    await owned_thread(svc, access, str(thread_id))
    try:  # query parameters, held to the body's rules (a NUL in `before` is refused as in a body)
        body = schemas.ThreadHistory(limit=limit, before=before)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None
    return await _history(svc, str(thread_id), body)


@router.post("/{thread_id}/history")
async def get_history(
    thread_id: uuid.UUID, body: schemas.ThreadHistory, svc: Svc, access: AccessDep
) -> list[Json]:
    await owned_thread(svc, access, str(thread_id))
    return await _history(svc, str(thread_id), body)


async def _history(svc: Services, thread_id: str, body: schemas.ThreadHistory) -> list[Json]:
    thread = await svc.store.get_thread(thread_id)
    if _graph_id(thread) is None:
        return []
    checkpoint = body.checkpoint.fields() if body.checkpoint else None
    before: RunnableConfig | None = None
    if isinstance(body.before, str):
        before = _config(thread_id, {"checkpoint_id": body.before})
    elif body.before is not None:
        before = _config(thread_id, body.before.fields())
    async with _thread_graph(svc, thread) as graph:
        history = graph.aget_state_history(
            _config(thread_id, checkpoint), filter=body.metadata, before=before, limit=body.limit
        )
        return [state_json(s) async for s in history]


async def _state_at(svc: Services, thread_id: str, checkpoint: Json | None, subgraphs: bool) -> Json:
    thread = await svc.store.get_thread(thread_id)
    if _graph_id(thread) is None:
        return empty_state(thread_id)
    async with _thread_graph(svc, thread) as graph:
        snapshot = await graph.aget_state(_config(thread_id, checkpoint), subgraphs=subgraphs)
    # LangGraph answers an unknown checkpoint with an empty snapshot (no creation time) echoing the id.
    if checkpoint and checkpoint.get("checkpoint_id") and snapshot.created_at is None:
        raise errors.NotFound(f"Thread {thread_id} has no checkpoint {checkpoint['checkpoint_id']}")
    if snapshot.config is None or snapshot.created_at is None:
        return empty_state(thread_id)
    return state_json(snapshot)


def _graph_id(thread: Thread) -> str | None:
    graph_id = thread.metadata.get("graph_id")
    return graph_id if isinstance(graph_id, str) else None


@contextlib.asynccontextmanager
async def _thread_graph(
    svc: Services, thread: Thread, access: AccessContext = "threads.read"
) -> AsyncIterator[Pregel[Any, Any]]:
    graph_id = _graph_id(thread)
    if graph_id is None:
        raise errors.Conflict(
            f"Thread {thread.thread_id} has no graph yet: run it once, or create it with metadata.graph_id"
        )
    if graph_id not in svc.graphs:
        raise errors.Conflict(
            f"Thread {thread.thread_id} belongs to graph {graph_id!r}, which is not configured"
        )
    async with svc.graphs.graph(graph_id, access=access) as graph:
        yield graph


def _config(thread_id: str, checkpoint: Json | None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint:
        configurable.update({k: v for k, v in checkpoint.items() if k in ("checkpoint_id", "checkpoint_ns")})
    return {"configurable": configurable}
