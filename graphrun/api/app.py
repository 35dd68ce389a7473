"""``create_app``: the FastAPI application, given the services it serves from."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

import graphrun
from graphrun.api import auth, errors
from graphrun.api.deps import Services
from graphrun.api.limits import BodyLimit, RateLimit
from graphrun.api.observe import Observe
from graphrun.api.routes import assistants, meta, protocol, runs, stats, store, threads


def create_app(svc: Services) -> FastAPI:
    app = FastAPI(
        title="graphrun",
        version=graphrun.__version__,
        description="A production runtime for LangGraph agents, speaking the LangGraph Server API.",
    )
    app.state.services = svc
    app.add_middleware(
        CORSMiddleware,
        allow_origins=svc.settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        # Browser clients read the run id from Content-Location and reconnect via Location.
        expose_headers=["content-location", "location"],
    )
    errors.install(app)
    for module in (meta, assistants, threads, runs, protocol, store, stats):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=svc.settings.max_body_bytes)
    if svc.settings.rate_limit:
        app.add_middleware(RateLimit, limit=svc.settings.rate_limit, redis_uri=svc.settings.redis_uri)
    settings = svc.settings
    digests = auth.load_keys(
        settings.api_keys, Path(settings.api_keys_file) if settings.api_keys_file else None
    )
    if digests:
        app.add_middleware(auth.ApiKeys, digests=digests)
    app.add_middleware(Observe)
    # The request's server span (outermost, so that Observe and the routes run inside it). The official
    # instrumentation, configured by the standard OTEL_* variables; probes and scrapes make no spans.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/ok,/metrics,/health", exclude_spans=["receive", "send"]
    )
    return app
