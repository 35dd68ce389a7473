"""Liveness, readiness and what this server is."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

import graphrun
from graphrun import metrics
from graphrun.api.deps import Services, Svc
from graphrun.types import Json

router = APIRouter(tags=["meta"])


@router.get("/ok")
async def ok() -> Json:
    """Alive: the process answers. Says nothing about its dependencies (that is /ready)."""
    return {"ok": True}


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
