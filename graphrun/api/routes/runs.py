"""``/runs`` and ``/threads/{id}/runs``: a run is written as a row, then a worker executes it.

The API validates, writes the run with everything needed to execute it (``api/submit.py``), and returns
(or waits for, or streams) the result that the worker publishes on the bus. It never executes a graph
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import typing
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from starlette.responses import StreamingResponse

from graphrun import errors, metrics
from graphrun.api import schemas, sse
from graphrun.api._resolve import owned_run, owned_thread, require_uuid, resolve_assistant
from graphrun.api._runs import await_output, cancel, reload, wait_response
from graphrun.api.authz import AccessDep
from graphrun.api.deps import Services, Svc
from graphrun.api.submit import create, new_run, submit
from graphrun.models import Run, run_json
from graphrun.stores.base import Page
from graphrun.types import Json, RunStatus

router = APIRouter(tags=["runs"])

ThreadStreamMode = Literal["run_modes", "lifecycle", "state_update"]
THREAD_STREAM_MODES = frozenset(typing.get_args(ThreadStreamMode))
_EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")

# ---------------------------------------------------------------- creating


def _location(run: Run, suffix: str = "") -> dict[str, str]:
    path = f"/threads/{run.thread_id}/runs/{run.run_id}"
    headers = {"Content-Location": path}
    if suffix:
        headers["Location"] = path + suffix
    return headers


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: uuid.UUID, body: schemas.RunCreate, svc: Svc, access: AccessDep
) -> JSONResponse:
    run = await create(svc, body, str(thread_id), access)
    return JSONResponse(run_json(run), headers=_location(run))


@router.post("/runs")
async def create_stateless_run(body: schemas.RunCreate, svc: Svc, access: AccessDep) -> JSONResponse:
    run = await create(svc, body, None, access)
    return JSONResponse(run_json(run), headers=_location(run))


class BatchItem(schemas.RunCreate):
    thread_id: str | None = None


@router.post("/runs/batch")
async def create_batch(body: list[BatchItem], svc: Svc, access: AccessDep) -> list[Json]:
    """Every item is validated, then all runs are written in one transaction: a bad item (or a thread
    that is missing or busy) leaves nothing half-written."""
    new_runs = []
    for item in body:
        thread_id = require_uuid(item.thread_id, "thread_id") if item.thread_id else None
        new_runs.append(await new_run(svc, item, thread_id, access))
    return [run_json(run) for run in await submit(svc, new_runs)]


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: uuid.UUID, body: schemas.RunCreate, svc: Svc, access: AccessDep) -> Response:
    run = await create(svc, body, str(thread_id), access, announce=False)
    return await wait_response(svc, run, _location(run, "/join"))


@router.post("/runs/wait")
async def wait_stateless_run(body: schemas.RunCreate, svc: Svc, access: AccessDep) -> Response:
    run = await create(svc, body, None, access, announce=False)
    return await wait_response(svc, run, _location(run, "/join"))


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    thread_id: uuid.UUID, body: schemas.RunCreate, svc: Svc, access: AccessDep
) -> StreamingResponse:
    run = await create(svc, body, str(thread_id), access)
    return _stream_response(svc, run, body.on_disconnect == "cancel")


@router.post("/runs/stream")
async def stream_stateless_run(body: schemas.RunCreate, svc: Svc, access: AccessDep) -> StreamingResponse:
    run = await create(svc, body, None, access)
    return _stream_response(svc, run, body.on_disconnect == "cancel")


# ---------------------------------------------------------------- reading


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    *,
    thread_id: uuid.UUID,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=schemas.MAX_OFFSET),
    status: RunStatus | None = None,
    svc: Svc,
    access: AccessDep,
) -> list[Json]:
    if access.on:
        await owned_thread(svc, access, str(thread_id))
    runs = await svc.store.list_runs(str(thread_id), status, Page(limit, offset))
    return [run_json(r) for r in runs]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: uuid.UUID, run_id: uuid.UUID, svc: Svc, access: AccessDep) -> Json:
    return run_json(await owned_run(svc, access, str(thread_id), str(run_id)))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(thread_id: uuid.UUID, run_id: uuid.UUID, svc: Svc, access: AccessDep) -> Response:
    if access.on:
        await owned_thread(svc, access, str(thread_id), "delete")
    await svc.store.delete_run(str(thread_id), str(run_id))
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: uuid.UUID, run_id: uuid.UUID, svc: Svc, access: AccessDep) -> Response:
    run = await owned_run(svc, access, str(thread_id), str(run_id))
    return await wait_response(svc, run, _location(run, "/join"))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    *,
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    cancel_on_disconnect: bool = False,
    last_event_id: str | None = Header(None),
    svc: Svc,
    access: AccessDep,
) -> StreamingResponse:
    run = await owned_run(svc, access, str(thread_id), str(run_id))
    # As the official server: a header that is no event id is ignored (the stream follows from now on).
    after = event_id(last_event_id, strict=False)
    if after is not None and after != "-1" and await svc.bus.has_event(run.run_id, after) is False:
        raise errors.InvalidRequest(f"Last-Event-ID {after!r} is not an event of run {run.run_id}")
    return _stream_response(svc, run, cancel_on_disconnect, after=after)


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(
    *,
    thread_id: uuid.UUID,
    stream_mode: list[ThreadStreamMode] = Query(["run_modes"]),
    stream_modes: str | None = None,
    last_event_id: str | None = Header(None),
    svc: Svc,
    access: AccessDep,
) -> StreamingResponse:
    """Every run's events on the thread, from now on (or after ``Last-Event-ID``), until the client
    leaves. ``stream_modes`` (a comma list) is what the official server reads; the SDK sends
    ``stream_mode``: both are taken."""
    await owned_thread(svc, access, str(thread_id))
    modes: set[str] = set(stream_mode)
    if stream_modes is not None:
        modes = {m.strip() for m in stream_modes.split(",") if m.strip()}
        unknown = sorted(modes - THREAD_STREAM_MODES)
        if unknown:
            raise errors.InvalidRequest(
                f"unknown thread stream mode {unknown[0]!r}; "
                f"expected one of {', '.join(sorted(THREAD_STREAM_MODES))}"
            )
    body = _thread_events(svc, str(thread_id), modes, event_id(last_event_id))
    return sse.response(body, {})


# ---------------------------------------------------------------- cancelling


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    *,
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    params: schemas.CancelParams = Depends(),
    svc: Svc,
    access: AccessDep,
) -> Response:
    await owned_run(svc, access, str(thread_id), str(run_id), "update")
    run = await cancel(svc, str(thread_id), str(run_id), params.cancel_action)
    if not params.wait:
        return Response(status_code=202)
    # As the official server: the run's final output, as /join answers it.
    return JSONResponse(await await_output(svc, run), headers=_location(run, "/join"))


@router.post("/runs/cancel")
async def cancel_runs(
    *, body: schemas.RunsCancel, action: str = Query("interrupt"), svc: Svc, access: AccessDep
) -> Response:
    """Cancel runs by id on a thread, every in-flight run of a thread, of an assistant, or in a status;
    of the threads the caller may update."""
    status = None if body.status in (None, "all") else body.status
    scope = await access.scope("threads", "update", {"thread_id": None})
    if body.assistant_id is not None:
        if body.thread_id is not None or body.run_ids is not None or body.status is not None:
            raise errors.InvalidRequest("give assistant_id alone, without thread_id, run_ids or status")
        assistant = await resolve_assistant(svc, body.assistant_id, access)
        targets = await svc.store.inflight_runs(None, assistant.assistant_id, _CANCEL_LIMIT, scope=scope)
    elif body.thread_id is None:
        if body.status is None or body.run_ids is not None:
            raise errors.InvalidRequest(
                "say which runs to cancel: thread_id (with run_ids or status), status, or assistant_id"
            )
        targets = await svc.store.inflight_runs(status, None, _CANCEL_LIMIT, scope=scope)
    else:
        thread_id = require_uuid(body.thread_id, "thread_id")
        if access.on:
            await owned_thread(svc, access, thread_id, "update")
        if body.run_ids is not None:
            ids = [require_uuid(r, "run_ids[]") for r in body.run_ids]
            targets = [await svc.store.get_run(thread_id, r) for r in ids]  # 404 before cancelling anything
        else:
            runs = await svc.store.list_runs(thread_id, None, Page(limit=_CANCEL_LIMIT))
            targets = [r for r in runs if r.status in ({status} if status else {"pending", "running"})]
    for run in targets:
        with contextlib.suppress(errors.RunNotFound):  # it ended, or was rolled back, meanwhile
            await cancel(svc, run.thread_id, run.run_id, schemas.cancel_action(action))
    return Response(status_code=204)


# Most runs one /runs/cancel request cancels.
_CANCEL_LIMIT = 1000


# ---------------------------------------------------------------- streaming


def _stream_response(
    svc: Services,
    run: Run,
    cancel_on_disconnect: bool,
    *,
    after: str | None = "-1",
) -> StreamingResponse:
    """The run's events as SSE: for a new run all of them (``-1``); for a join, those after
    ``Last-Event-ID``, or with none only those from now on, as the official server does (a client
    reconnecting without an id must not receive what it already had a second time)."""
    body = _events(svc, run, cancel_on_disconnect, after=after)
    return sse.response(body, _location(run, "/stream"))


async def _events(
    svc: Services, run: Run, cancel_on_disconnect: bool, *, after: str | None
) -> AsyncIterator[bytes]:
    resumable = run.request.stream_resumable
    finished = False
    try:
        metrics.STREAM_SUBSCRIBERS.labels("run").inc()
        subscription = svc.bus.subscribe(run.run_id, after, svc.settings.sse_keepalive_s)
        async with contextlib.aclosing(subscription) as events:
            async for event in events:
                if svc.draining.is_set():  # the server is going away, not the client: the run goes on
                    finished = True
                    return
                if event is None:
                    yield sse.HEARTBEAT
                    current = await reload(svc, run)
                    if current is None or (current.finished and svc.bus.output(run.run_id) is None):
                        break  # finished where this process could not see its events
                    continue
                yield sse.frame(event.event, event.data, event.id if resumable else None)
        finished = True
    finally:
        metrics.STREAM_SUBSCRIBERS.labels("run").dec()
        if not finished and cancel_on_disconnect:
            await asyncio.shield(_cancel_quietly(svc, run))


async def _thread_events(
    svc: Services, thread_id: str, modes: set[str], after: str | None
) -> AsyncIterator[bytes]:
    subscription = svc.bus.subscribe_thread(thread_id, after, svc.settings.sse_keepalive_s)
    gauge = metrics.STREAM_SUBSCRIBERS.labels("thread")
    with gauge.track_inprogress():
        async with contextlib.aclosing(subscription) as events:
            async for event in events:
                if svc.draining.is_set():
                    return
                if event is None:
                    yield sse.HEARTBEAT
                elif modes & _thread_modes(event.event):
                    yield sse.frame(event.event, event.data, event.id)


def _thread_modes(event: str) -> set[str]:
    """The thread stream modes that carry an event: ``run_modes`` every run's events (``metadata``
    included), ``lifecycle`` only ``metadata``, ``state_update`` only state updates."""
    if event == "state_update":
        return {"state_update"}
    return {"run_modes", "lifecycle"} if event == "metadata" else {"run_modes"}


def event_id(value: str | None, *, strict: bool = True) -> str | None:
    """A ``Last-Event-ID`` header: ``-1`` (everything) or an id as the server issues them (``0`` is
    ``-1`` and ``<ms>`` alone ``<ms>-0``, as Redis reads them). Anything else is refused when ``strict``
    (a thread's stream: the official server refuses it there), else None, as if no header was sent."""
    if value is None or value == "" or value == "-1":
        return value or None
    if value in ("0", "0-0"):  # before every id: everything, as Redis reads it
        return "-1"
    if value.isdigit() and len(value) <= 20:
        return f"{value}-0"
    if not _EVENT_ID.fullmatch(value):
        if not strict:
            return None
        raise errors.InvalidRequest(
            f"Last-Event-ID {value!r} is not an event id: expected '<ms>-<seq>' as sent in 'id:' lines, or -1"
        )
    return value


async def _cancel_quietly(svc: Services, run: Run) -> None:
    with contextlib.suppress(errors.NotFound):
        await cancel(svc, run.thread_id, run.run_id, "interrupt", "client_disconnect")
