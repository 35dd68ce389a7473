"""``/store``: the long-term, cross-thread key-value store that graphs also reach as ``store``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Response
from langgraph.store.base import InvalidNamespaceError, Item

from graphrun import errors
from graphrun.api import schemas
from graphrun.api.authz import Access, AccessDep
from graphrun.api.deps import Svc
from graphrun.types import Json

router = APIRouter(prefix="/store", tags=["store"])


def _item_json(item: Item) -> Json:
    data: Json = item.dict()
    # The SQLite store keeps naive UTC times; clients get them with their zone, like every other time.
    for key in ("created_at", "updated_at"):
        value = getattr(item, key)
        if isinstance(value, datetime) and value.tzinfo is None:
            data[key] = value.replace(tzinfo=UTC).isoformat()
    return data


def _namespace(labels: list[str]) -> tuple[str, ...]:
    if not labels or any(not label or "." in label for label in labels):
        raise errors.InvalidRequest(
            f"namespace {labels!r} is invalid: it needs at least one label, and labels are non-empty "
            "and contain no '.'"
        )
    return tuple(labels)


async def _allowed(access: Access, action: str, value: Json) -> tuple[str, ...] | None:
    """The namespace the caller's ``store`` handler leaves (it may rewrite it, to keep each user in
    their own); None: the caller may see nothing there."""
    await access.scope("store", action, value)
    namespace = value.get("namespace")
    return None if namespace is None else tuple(namespace)


@router.put("/items", status_code=204)
async def put_item(body: schemas.StoreItemPut, svc: Svc, access: AccessDep) -> Response:
    if body.index and getattr(svc.kv, "index_config", None) is None:  # fields to embed, with nothing to embed
        raise errors.InvalidRequest("index needs store.index in langgraph.json (embed, dims, fields)")
    ttl_minutes = body.ttl  # the API's ttl is in minutes, as the store's
    value: Json = {
        "namespace": _namespace(body.namespace),
        "key": body.key,
        "value": body.value,
        "index": body.index,
    }
    namespace = await _allowed(access, "put", value)
    if namespace is None:
        raise errors.Forbidden(f"not allowed to write store namespace {body.namespace!r}")
    await svc.kv.aput(
        _namespace(list(namespace)), body.key, value["value"], index=body.index, ttl=ttl_minutes
    )
    return Response(status_code=204)


@router.get("/items")
async def get_item(
    *,
    key: str,
    namespace: str = Query("", description="labels joined by '.'"),
    refresh_ttl: bool | None = None,
    svc: Svc,
    access: AccessDep,
) -> Json | None:
    labels = namespace.split(".") if namespace else []
    allowed = await _allowed(access, "get", {"namespace": _namespace(labels), "key": key})
    if allowed is None:
        return None
    item = await svc.kv.aget(_namespace(list(allowed)), key, refresh_ttl=refresh_ttl)
    # The official server answers a missing item with 200 and null, and clients rely on it.
    return _item_json(item) if item is not None else None


@router.delete("/items", status_code=204)
async def delete_item(body: schemas.StoreItemDelete, svc: Svc, access: AccessDep) -> Response:
    namespace = await _allowed(access, "delete", {"namespace": _namespace(body.namespace), "key": body.key})
    if namespace is None:
        raise errors.Forbidden(f"not allowed to delete from store namespace {body.namespace!r}")
    await svc.kv.adelete(_namespace(list(namespace)), body.key)
    return Response(status_code=204)


@router.post("/items/search")
async def search_items(body: schemas.StoreSearch, svc: Svc, access: AccessDep) -> Json:
    if body.query is not None and getattr(svc.kv, "index_config", None) is None:
        raise errors.InvalidRequest(
            "query (semantic search) needs store.index in langgraph.json (embed, dims, fields)"
        )
    value: Json = {
        "namespace": tuple(body.namespace_prefix),
        "filter": body.filter,
        "limit": body.limit,
        "offset": body.offset,
        "query": body.query,
    }
    prefix = await _allowed(access, "search", value)
    if prefix is None:
        return {"items": []}
    try:
        items = await svc.kv.asearch(
            prefix,
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    except ValueError as exc:  # e.g. an unknown filter operator
        raise errors.InvalidRequest(f"filter: {exc}") from exc
    return {"items": [_item_json(i) for i in items]}


@router.post("/namespaces")
async def list_namespaces(body: schemas.StoreNamespaces, svc: Svc, access: AccessDep) -> Json:
    value: Json = {
        "namespace": tuple(body.prefix or ()),
        "suffix": tuple(body.suffix) if body.suffix else None,
        "max_depth": body.max_depth,
        "limit": body.limit,
        "offset": body.offset,
    }
    prefix = await _allowed(access, "list_namespaces", value)
    if prefix is None:
        return {"namespaces": []}
    try:
        namespaces = await svc.kv.alist_namespaces(
            prefix=prefix or None,
            suffix=tuple(body.suffix) if body.suffix else None,
            max_depth=body.max_depth,
            limit=body.limit,
            offset=body.offset,
        )
    except InvalidNamespaceError as exc:  # an empty label in the prefix or suffix
        raise errors.InvalidRequest(f"namespace: {exc}") from exc
    return {"namespaces": [list(ns) for ns in namespaces]}
