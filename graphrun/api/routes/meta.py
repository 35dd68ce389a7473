"""Liveness, readiness and what this server is."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import graphrun
from graphrun.api.deps import Svc
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
        "flags": {"assistants": True, "crons": False, "langsmith": False},
    }


@router.get("/ready")
async def ready(svc: Svc) -> JSONResponse:
    """Ready to serve: not shutting down, and the control store, the checkpointer and the event bus
    (Redis in production mode) answer. A load balancer takes a process out of rotation on 503."""
    checks: dict[str, str] = {"process": "draining" if svc.draining.is_set() else "ok"}
    try:
        await svc.store.count_assistants(None, {}, None)
        checks["control_store"] = "ok"
    except Exception as exc:
        checks["control_store"] = f"error: {type(exc).__name__}: {exc}"
    try:
        await svc.graphs.persistence.checkpointer.aget_tuple(
            {"configurable": {"thread_id": "graphrun-ready"}}
        )
        checks["checkpointer"] = "ok"
    except Exception as exc:
        checks["checkpointer"] = f"error: {type(exc).__name__}: {exc}"
    try:
        checks["event_bus"] = "ok" if await svc.bus.ping() else "error: unreachable"
    except Exception as exc:
        checks["event_bus"] = f"error: {type(exc).__name__}: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503
    )
