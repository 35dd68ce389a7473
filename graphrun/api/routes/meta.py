"""Liveness, readiness and what this server is."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

import graphrun
from graphrun import metrics
from graphrun.api.deps import Services, Svc
from graphrun.types import Json

router = APIRouter(tags=["meta"])


@router.get("/ok")
async def ok(svc: Svc, check_db: str = "0") -> JSONResponse:
    """Alive: the process answers, with its data dependencies as the official server lists them
    (``postgres`` and ``redis`` in production mode; none in embedded mode, like its in-memory
    runtime): ``skipped``, or with ``?check_db=1`` ``healthy``/``unhealthy`` (500 when one is).
    Readiness, draining included, is ``/ready``."""
    if check_db not in ("0", "1"):
        return JSONResponse({"detail": "check_db must be 0 or 1"}, status_code=400)
    probes: dict[str, Callable[[], Awaitable[object]]] = {}
    if svc.settings.database_uri:
        probes["postgres"] = lambda: svc.store.count_assistants(None, {}, None)
    if svc.settings.redis_uri:
        probes["redis"] = svc.bus.ping
    if check_db == "0":
        return JSONResponse({"ok": True, "services": dict.fromkeys(probes, "skipped")})
    services = {
        name: "healthy" if await _check(probe()) == "ok" else "unhealthy" for name, probe in probes.items()
    }
    healthy = all(state == "healthy" for state in services.values())
    return JSONResponse({"ok": healthy, "services": services}, status_code=200 if healthy else 500)


@router.get("/health")
async def health() -> Json:
    return {"status": "ok"}


@router.get("/info")
async def info(svc: Svc) -> Json:
    return {
        "version": graphrun.__version__,
        "server": "graphrun",
        "graphs": svc.graphs.graph_ids,
        "flags": {
            "assistants": True,
            "crons": True,
            "langsmith": svc.settings.langsmith_enabled,
            "langfuse": svc.settings.langfuse_enabled,
            "opentelemetry": svc.settings.traces_exported,
        },
    }


@router.get("/metrics", include_in_schema=False)
async def prometheus() -> Response:
    """This process's Prometheus metrics (docs/observability.md)."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


@router.get("/ready")
async def ready(svc: Svc) -> JSONResponse:
    """Ready to serve: not shutting down, and the control store, the checkpointer and the event bus
    (Redis in production mode) answer. A load balancer takes a process out of rotation on 503."""
    checks: dict[str, str] = {"process": "draining" if svc.draining.is_set() else "ok"}
    checks["control_store"] = await _check(svc.store.count_assistants(None, {}, None))
    checks["checkpointer"] = await _check(
        svc.graphs.persistence.checkpointer.aget_tuple({"configurable": {"thread_id": "graphrun-ready"}})
    )
    checks["event_bus"] = await _check(svc.bus.ping())
    healthy = all(v == "ok" for v in checks.values())
    body: Json = {"status": "ok" if healthy else "unavailable", "checks": checks}
    # Reported, never failing readiness: an open circuit is a provider's trouble, not this process's.
    body["circuit_breakers"] = await _breakers(svc)
    return JSONResponse(
        body,
        200 if healthy else 503,
        headers=None if healthy else {"Retry-After": "1"},
    )


# Longest /ready waits on one dependency: a probe must get an answer before its own timeout.
ready_check_timeout_s = 2.0


async def _check(probe: Awaitable[object]) -> str:
    """``ok``, or what went wrong: an error, a dependency that said no, or one that did not answer."""
    try:
        async with asyncio.timeout(ready_check_timeout_s):
            answer = await probe
    except TimeoutError:
        return f"error: no answer within {ready_check_timeout_s:g}s"
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"
    return "error: unreachable" if answer is False else "ok"


async def _breakers(svc: Services) -> Json:
    """The workers' circuit breakers: for each, its worst state across workers and each worker's."""
    try:
        async with asyncio.timeout(ready_check_timeout_s):
            reports = await svc.bus.breakers()
    except Exception:
        return {}
    rank = {"closed": 0, "half_open": 1, "open": 2}
    found: dict[str, Json] = {}
    for worker, states in sorted(reports.items()):
        for name, state in states.items():
            entry = found.setdefault(name, {"state": state, "workers": {}})
            entry["workers"][worker] = state
            if rank.get(state, 0) > rank.get(entry["state"], 0):
                entry["state"] = state
    return found
