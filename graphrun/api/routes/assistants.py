"""``/assistants``: configured versions of a graph. Each graph also has a system assistant."""

from __future__ import annotations

import contextlib

import structlog
from fastapi import APIRouter, Query, Response

from graphrun import errors
from graphrun.api import schemas
from graphrun.api._resolve import owned_thread, require_graph, require_uuid, resolve_assistant
from graphrun.api._runs import cancel, delete_thread_now
from graphrun.api.authz import Access, AccessDep, as_uuid, in_scope
from graphrun.api.deps import Services, Svc
from graphrun.graphs import graph_schemas
from graphrun.models import Assistant, new_id, run_timeouts, utcnow
from graphrun.stores.base import Page
from graphrun.types import Json

router = APIRouter(prefix="/assistants", tags=["assistants"])
log = structlog.get_logger("graphrun.assistants")


@router.post("")
async def create_assistant(body: schemas.AssistantCreate, svc: Svc, access: AccessDep) -> Json:
    graph_id = require_graph(svc, body.graph_id)
    run_timeouts(body.config, body.context)  # its runs' time limits, refused now if they are bad
    assistant_id = require_uuid(body.assistant_id, "assistant_id") if body.assistant_id else new_id()
    metadata = body.metadata
    if access.on:
        value: Json = {
            "assistant_id": as_uuid(assistant_id),
            "graph_id": graph_id,
            "config": body.config,
            "context": body.context,
            "metadata": dict(metadata),
            "if_exists": body.if_exists,
            "name": body.name,
            "description": body.description,
        }
        scope = await access.scope("assistants", "create", value)
        metadata = value["metadata"]
        if body.assistant_id and body.if_exists == "do_nothing":
            with contextlib.suppress(errors.AssistantNotFound):  # another's assistant is not handed over
                if not in_scope(scope, (await svc.store.get_assistant(assistant_id)).metadata):
                    raise errors.AlreadyExists(f"Assistant {assistant_id} already exists")
    now = utcnow()
    draft = Assistant(
        assistant_id=assistant_id,
        graph_id=graph_id,
        config=body.config,
        context=body.context,
        metadata=metadata,
        name=body.name or "Untitled",
        description=body.description,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return schemas.assistant_json(await svc.store.create_assistant(draft, body.if_exists))


@router.post("/search")
async def search_assistants(body: schemas.AssistantSearch, svc: Svc, access: AccessDep) -> list[Json]:
    page = Page(body.limit, body.offset, body.sort_by, body.sort_order or "desc")
    scope = await _search_scope(access, body, body.limit, body.offset)
    found = await svc.store.search_assistants(body.graph_id, body.metadata, body.name, page, scope=scope)
    items = [schemas.assistant_json(a) for a in found]
    return schemas.select(items, body.select, schemas.ASSISTANT_FIELDS)


@router.post("/count")
async def count_assistants(body: schemas.AssistantCount, svc: Svc, access: AccessDep) -> int:
    scope = await _search_scope(access, body, None, None)
    return await svc.store.count_assistants(body.graph_id, body.metadata, body.name, scope=scope)


async def _search_scope(
    access: Access,
    body: schemas.AssistantSearch | schemas.AssistantCount,
    limit: int | None,
    offset: int | None,
) -> list[Json] | None:
    value: Json = {
        "graph_id": body.graph_id,
        "metadata": dict(body.metadata or {}),
        "name": body.name,
        "limit": limit,
        "offset": offset,
    }
    return await access.scope("assistants", "search", value)


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, svc: Svc, access: AccessDep) -> Json:
    return schemas.assistant_json(await resolve_assistant(svc, assistant_id, access))


@router.patch("/{assistant_id}")
async def update_assistant(
    assistant_id: str, body: schemas.AssistantPatch, svc: Svc, access: AccessDep
) -> Json:
    changes = body.model_dump(exclude_none=True)
    value: Json = {
        "metadata": dict(body.metadata or {}),
        **{k: v for k, v in changes.items() if k != "metadata"},
    }
    current = await resolve_assistant(svc, assistant_id, access, "update", value)
    if value["metadata"]:
        changes["metadata"] = value["metadata"]
    if body.graph_id is not None:
        require_graph(svc, body.graph_id)
    run_timeouts(body.config or {}, body.context or {})
    updated = await svc.store.update_assistant(current.assistant_id, changes)
    return schemas.assistant_json(updated)


@router.delete("/{assistant_id}", status_code=204)
async def delete_assistant(
    *, assistant_id: str, delete_threads: bool = False, svc: Svc, access: AccessDep
) -> Response:
    """Delete the assistant, its versions and crons, as the official server does: first, with
    ``delete_threads``, the threads whose metadata names it (those the caller may delete), then its
    runs in flight on threads the caller may update are cancelled (``cancel_reason``
    ``assistant_deleted``)."""
    current = await resolve_assistant(svc, assistant_id, access, "delete")
    aid = current.assistant_id
    if delete_threads:
        for tid in await _threads_of(svc, aid):
            try:
                await owned_thread(svc, access, tid, "delete")
            except (errors.NotFound, errors.Forbidden):
                log.info("assistant_delete_skips_thread", assistant_id=aid, thread_id=tid)
                continue  # gone meanwhile, or not the caller's to delete
            await delete_thread_now(svc, tid)
    scope = await access.scope("threads", "update", {"thread_id": None})  # as POST /runs/cancel
    for run in await svc.store.inflight_runs(None, aid, _CANCEL_LIMIT, scope=scope):
        with contextlib.suppress(errors.RunNotFound):  # it ended, or its thread went, meanwhile
            await cancel(svc, run.thread_id, run.run_id, "interrupt", "assistant_deleted")
    await svc.store.delete_assistant(aid)
    return Response(status_code=204)


# Most runs in flight deleting an assistant cancels; threads it reads per page with ``delete_threads``.
_CANCEL_LIMIT = 1000
_PAGE = 500


async def _threads_of(svc: Services, assistant_id: str) -> list[str]:
    """The ids of the threads whose metadata says ``assistant_id``."""
    found: list[str] = []
    while True:
        page = Page(limit=_PAGE, offset=len(found))
        threads = await svc.store.search_threads({"assistant_id": assistant_id}, {}, None, None, page)
        found += [t.thread_id for t in threads]
        if len(threads) < _PAGE:
            return found


@router.post("/{assistant_id}/versions")
async def list_versions(
    assistant_id: str, body: schemas.AssistantVersionsSearch, svc: Svc, access: AccessDep
) -> list[Json]:
    current = await resolve_assistant(svc, assistant_id, access)
    versions = await svc.store.list_assistant_versions(
        current.assistant_id, body.metadata, Page(body.limit, body.offset)
    )
    return [schemas.assistant_json(v) for v in versions]


@router.post("/{assistant_id}/latest")
async def set_latest(assistant_id: str, body: schemas.AssistantLatest, svc: Svc, access: AccessDep) -> Json:
    current = await resolve_assistant(svc, assistant_id, access, "update")
    return schemas.assistant_json(await svc.store.set_assistant_latest(current.assistant_id, body.version))


@router.get("/{assistant_id}/graph")
async def get_graph(
    *, assistant_id: str, xray: bool | int = Query(False, ge=0), svc: Svc, access: AccessDep
) -> Json:
    assistant = await resolve_assistant(svc, assistant_id, access)
    async with svc.graphs.graph(assistant.graph_id, assistant.config) as graph:  # type: ignore[arg-type]
        drawing = await graph.aget_graph(xray=xray)
        result: Json = drawing.to_json()
    return result


@router.get("/{assistant_id}/schemas")
async def get_schemas(assistant_id: str, svc: Svc, access: AccessDep) -> Json:
    assistant = await resolve_assistant(svc, assistant_id, access)
    async with svc.graphs.graph(assistant.graph_id, assistant.config) as graph:  # type: ignore[arg-type]
        return await graph_schemas(graph, assistant.graph_id)


@router.get("/{assistant_id}/subgraphs")
async def get_subgraphs(*, assistant_id: str, recurse: bool = False, svc: Svc, access: AccessDep) -> Json:
    return await _subgraphs(svc, access, assistant_id, None, recurse)


@router.get("/{assistant_id}/subgraphs/{namespace}")
async def get_subgraph(
    *, assistant_id: str, namespace: str, recurse: bool = False, svc: Svc, access: AccessDep
) -> Json:
    return await _subgraphs(svc, access, assistant_id, namespace, recurse)


async def _subgraphs(
    svc: Services, access: Access, assistant_id: str, namespace: str | None, recurse: bool
) -> Json:
    assistant = await resolve_assistant(svc, assistant_id, access)
    found: Json = {}
    async with svc.graphs.graph(assistant.graph_id, assistant.config) as graph:  # type: ignore[arg-type]
        async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse):
            schema = await graph_schemas(sub, assistant.graph_id)  # type: ignore[arg-type]
            schema.pop("graph_id")
            found[ns] = schema
    if namespace is not None and not found:
        raise errors.NotFound(f"graph {assistant.graph_id!r} has no subgraph {namespace!r}")
    return found
