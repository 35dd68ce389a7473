"""``/store``: the long-term, cross-thread key-value store that graphs also reach as ``store``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query, Response
from langgraph.store.base import Item

from graphrun import errors
from graphrun.api import schemas
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


@router.put("/items", status_code=204)
async def put_item(body: schemas.StoreItemPut, svc: Svc) -> Response:
    if body.index:  # a list of fields to embed; `false` (do not index) is what happens anyway
        raise errors.InvalidRequest(
            "index needs store.index (semantic search), which graphrun does not support yet"
        )
    ttl_minutes = body.ttl  # the API's ttl is in minutes, as the store's
    await svc.kv.aput(_namespace(body.namespace), body.key, body.value, index=body.index, ttl=ttl_minutes)
    return Response(status_code=204)


@router.get("/items")
async def get_item(
    *,
    key: str,
    namespace: str = Query("", description="labels joined by '.'"),
    refresh_ttl: bool | None = None,
    svc: Svc,
) -> Json | None:
    labels = namespace.split(".") if namespace else []
    item = await svc.kv.aget(_namespace(labels), key, refresh_ttl=refresh_ttl)
    # The official server answers a missing item with 200 and null, and clients rely on it.
    return _item_json(item) if item is not None else None


@router.delete("/items", status_code=204)
async def delete_item(body: schemas.StoreItemDelete, svc: Svc) -> Response:
    await svc.kv.adelete(_namespace(body.namespace), body.key)
    return Response(status_code=204)


@router.post("/items/search")
async def search_items(body: schemas.StoreSearch, svc: Svc) -> Json:
    if body.query is not None:
        raise errors.InvalidRequest(
            "query (semantic search) needs store.index, which graphrun does not support yet"
        )
    try:
        items = await svc.kv.asearch(
            tuple(body.namespace_prefix),
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    except ValueError as exc:  # e.g. an unknown filter operator
        raise errors.InvalidRequest(f"filter: {exc}") from exc
    return {"items": [_item_json(i) for i in items]}


@router.post("/namespaces")
async def list_namespaces(body: schemas.StoreNamespaces, svc: Svc) -> Json:
    namespaces = await svc.kv.alist_namespaces(
        prefix=tuple(body.prefix) if body.prefix else None,
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(ns) for ns in namespaces]}
