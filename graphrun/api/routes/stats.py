"""``GET /stats``: conversation analytics over a time window (graphrun's; the official server has none)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query

from graphrun.api._resolve import require_graph
from graphrun.api.authz import AccessDep
from graphrun.api.deps import Svc
from graphrun.models import utcnow
from graphrun.types import Json

router = APIRouter(tags=["stats"])


@router.get("/stats")
async def stats(
    svc: Svc,
    access: AccessDep,
    hours: float = Query(24.0, gt=0, le=24 * 366, description="the window: the runs created this long ago"),
    graph_id: str | None = Query(None, description="one graph's runs only"),
) -> Json:
    """Threads active, runs, turns per thread, run latency, error and timeout rates and tokens by model,
    over the runs created in the last ``hours`` (computed in the control store's SQL). With auth on, only
    the runs of threads the caller may search count."""
    if graph_id is not None:
        require_graph(svc, graph_id)
    until = utcnow()
    since = until - timedelta(hours=hours)
    scope = await access.scope("threads", "search", {"metadata": {}, "limit": None, "offset": None})
    found = await svc.store.run_stats(since, until, graph_id, scope=scope)
    return {"since": since.isoformat(), "until": until.isoformat(), "graph_id": graph_id, **found.json()}
