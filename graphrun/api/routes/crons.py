"""``/runs/crons`` and ``/threads/{id}/runs/crons``: schedules of runs, as ``client.crons`` calls them.

The API validates a cron's run as it validates any run request, and stores the cron with a template of
that run; workers fire it at each tick (``graphrun/crons.py``). A cron is its creator's: with auth, one
the caller may not see is answered as missing (404).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from graphrun import crons, errors, schedule
from graphrun.api import schemas
from graphrun.api._resolve import owned_thread, require_uuid
from graphrun.api.authz import Access, AccessDep, as_uuid, in_scope
from graphrun.api.deps import Services, Svc
from graphrun.api.submit import new_run, run_context
from graphrun.models import Cron, new_id, utcnow
from graphrun.stores.base import Page
from graphrun.types import Json

router = APIRouter(tags=["crons"])

# The payload fields that make up a cron's run (the rest say when it runs).
_RUN_FIELDS = frozenset(schemas.RunCreate.model_fields) & frozenset(schemas.ThreadCronCreate.model_fields)


@router.post("/runs/crons")
async def create_cron(body: schemas.CronCreate, svc: Svc, access: AccessDep) -> Json:
    """A stateless cron: each tick runs on a new thread."""
    return schemas.cron_json(await _create(svc, access, body, None, body.on_run_completed))


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(
    thread_id: uuid.UUID, body: schemas.ThreadCronCreate, svc: Svc, access: AccessDep
) -> Json:
    await owned_thread(svc, access, str(thread_id))
    return schemas.cron_json(await _create(svc, access, body, str(thread_id), None))


async def _create(
    svc: Services,
    access: Access,
    body: schemas.ThreadCronCreate,
    thread_id: str | None,
    on_run_completed: str | None,
) -> Cron:
    schedule.check(body.schedule)
    timezone = schedule.check_timezone(body.timezone)
    cron_id = new_id()
    metadata = dict(body.metadata)
    if access.on:
        value: Json = {
            "payload": body.payload(),
            "schedule": body.schedule,
            "cron_id": as_uuid(cron_id),
            "thread_id": as_uuid(thread_id) if thread_id else None,
            "user_id": access.identity,
            "end_time": body.end_time,
            "metadata": metadata,
        }
        await access.scope("crons", "create", value)
        if isinstance(value.get("metadata"), dict):
            metadata = value["metadata"]
    run_body = body.run_create(metadata=metadata)
    new = await new_run(svc, run_body, thread_id, access, announce=False)
    now = utcnow()
    cron = Cron(
        cron_id=cron_id,
        assistant_id=new.assistant_id,
        thread_id=thread_id,
        user_id=access.identity,
        schedule=body.schedule,
        timezone=timezone,
        end_time=_utc(body.end_time),
        enabled=body.enabled,
        on_run_completed=on_run_completed,
        next_run_date=schedule.next_tick(body.schedule, now, timezone),
        payload=body.payload(),
        metadata=metadata,
        template=crons.template_of(new, run_body.config, run_context(run_body)),
        created_at=now,
        updated_at=now,
    )
    return await svc.store.create_cron(cron)


@router.post("/runs/crons/search")
async def search_crons(body: schemas.CronSearch, svc: Svc, access: AccessDep) -> list[Json]:
    assistant_id, thread_id = _ids(body.assistant_id, body.thread_id)
    scope = await access.scope("crons", "search", _search_value(body, body.limit, body.offset))
    page = Page(body.limit, body.offset, body.sort_by, body.sort_order)
    found = await svc.store.search_crons(
        assistant_id, thread_id, body.enabled, body.metadata, page, scope=scope
    )
    return schemas.select([schemas.cron_json(c) for c in found], body.select, schemas.CRON_FIELDS)


@router.post("/runs/crons/count")
async def count_crons(body: schemas.CronCount, svc: Svc, access: AccessDep) -> int:
    assistant_id, thread_id = _ids(body.assistant_id, body.thread_id)
    scope = await access.scope("crons", "search", _search_value(body, 0, 0))
    return await svc.store.count_crons(assistant_id, thread_id, body.metadata, scope=scope)


def _ids(assistant_id: str | None, thread_id: str | None) -> tuple[str | None, str | None]:
    """Searches take ids only, as the official server's (a graph name is refused)."""
    return (
        require_uuid(assistant_id, "assistant_id") if assistant_id else None,
        require_uuid(thread_id, "thread_id") if thread_id else None,
    )


def _search_value(body: schemas.CronSearch | schemas.CronCount, limit: int, offset: int) -> Json:
    """A cron search as a ``crons.search`` handler sees it."""
    return {
        "assistant_id": as_uuid(body.assistant_id) if body.assistant_id else None,
        "thread_id": as_uuid(body.thread_id) if body.thread_id else None,
        "limit": limit,
        "offset": offset,
        "metadata": dict(body.metadata),
    }


@router.get("/runs/crons/{cron_id}")
async def get_cron(cron_id: uuid.UUID, svc: Svc, access: AccessDep) -> Json:
    return schemas.cron_json(await _owned(svc, access, str(cron_id)))


@router.patch("/runs/crons/{cron_id}")
async def update_cron(cron_id: uuid.UUID, body: schemas.CronPatch, svc: Svc, access: AccessDep) -> Json:
    """Change when a cron runs and what its runs are; the payload's fields are replaced one by one (as
    the official server merges them) and the merged run is validated again."""
    changed = body.model_fields_set
    if not changed:
        raise errors.BadRequest("Request body cannot be empty: give at least one field to change")
    value: Json = {
        "cron_id": as_uuid(str(cron_id)),
        "schedule": body.schedule,
        "end_time": body.end_time,
        "enabled": body.enabled,
        "on_run_completed": body.on_run_completed,
        "payload": body.run_changes(),
    }
    if "metadata" in changed:
        value["metadata"] = dict(body.metadata)
    cron = await _owned(svc, access, str(cron_id), "update", value)
    if body.on_run_completed is not None and cron.thread_id is not None:
        raise errors.InvalidRequest("on_run_completed applies to stateless crons; this cron runs on a thread")
    when = schedule.check(body.schedule) if body.schedule is not None else cron.schedule
    timezone = schedule.check_timezone(body.timezone) if "timezone" in changed else cron.timezone
    metadata = cron.metadata
    if isinstance(value.get("metadata"), dict):
        metadata = {**cron.metadata, **value["metadata"]}
    payload = {**cron.payload, **body.model_dump(mode="json", include=changed)}
    payload["assistant_id"] = cron.payload.get("assistant_id", cron.assistant_id)
    template = cron.template
    if value["payload"] or "metadata" in changed:
        run_fields: dict[str, Any] = {k: v for k, v in payload.items() if k in _RUN_FIELDS}
        try:
            run_body = schemas.RunCreate.model_validate({**run_fields, "metadata": metadata})
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        new = await new_run(svc, run_body, cron.thread_id, access, announce=False)
        template = crons.template_of(new, run_body.config, run_context(run_body))
    # A new schedule or zone, or a cron enabled again, goes on from now (the ticks it was off for are
    # not fired, as after downtime).
    rescheduled = body.schedule is not None or "timezone" in changed or (body.enabled and not cron.enabled)
    updated = dataclasses.replace(
        cron,
        schedule=when,
        timezone=timezone,
        end_time=_utc(body.end_time) if "end_time" in changed else cron.end_time,
        enabled=body.enabled if body.enabled is not None else cron.enabled,
        on_run_completed=body.on_run_completed or cron.on_run_completed,
        next_run_date=schedule.next_tick(when, utcnow(), timezone) if rescheduled else None,
        payload=payload,
        metadata=metadata,
        template=template,
    )
    return schemas.cron_json(await svc.store.replace_cron(updated))


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete_cron(cron_id: uuid.UUID, svc: Svc, access: AccessDep) -> Response:
    await _owned(svc, access, str(cron_id), "delete")
    await svc.store.delete_cron(str(cron_id))
    return Response(status_code=204)


async def _owned(
    svc: Services, access: Access, cron_id: str, action: str = "read", value: Json | None = None
) -> Cron:
    """The cron, if the caller may ``action`` it; one it may not is missing (404)."""
    value = {} if value is None else value
    value.setdefault("cron_id", as_uuid(cron_id))
    scope = await access.scope("crons", action, value)
    cron = await svc.store.get_cron(cron_id)
    if not in_scope(scope, cron.metadata):
        raise errors.CronNotFound(f"Cron {cron_id} not found")
    return cron


def _utc(value: datetime | None) -> datetime | None:
    """A time the client gave; one without a timezone is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
