"""``create_app``: the FastAPI application, given the services it serves from."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from langgraph_sdk import Auth
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import graphrun
from graphrun import errors as graphrun_errors
from graphrun.api import auth, authz, docs, errors
from graphrun.api.deps import HeaderPolicy, Services
from graphrun.api.limits import BodyLimit, Limiter, RateLimit, StreamBound
from graphrun.api.observe import Observe
from graphrun.api.routes import a2a, assistants, crons, mcp, meta, protocol, runs, stats, store, threads

# ``http.disable_*`` keys graphrun applies (disable_ui, the console, and disable_webhooks are applied
# apart).
DISABLE_KEYS = (
    "disable_assistants",
    "disable_threads",
    "disable_runs",
    "disable_store",
    "disable_meta",
    "disable_mcp",
    "disable_a2a",
)
META_PATHS = frozenset({"/ok", "/info", "/metrics"})
FASTAPI_OWN = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

# The keys of ``http.cors`` in langgraph.json, as Starlette's CORSMiddleware takes them.
CORS_KEYS = frozenset(
    {
        "allow_origins",
        "allow_methods",
        "allow_headers",
        "allow_credentials",
        "allow_origin_regex",
        "expose_headers",
        "max_age",
    }
)


def create_app(
    svc: Services,
    *,
    custom_auth: Auth | None = None,
    auth_config: Mapping[str, Any] | None = None,
    http: Mapping[str, Any] | None = None,
    user_app: Starlette | None = None,
    cors: Mapping[str, Any] | None = None,
) -> FastAPI:
    """``custom_auth``: the ``langgraph_sdk.Auth`` of ``auth.path`` (``auth_config`` its section);
    ``http``: the ``http`` section of langgraph.json (``cors`` alone may be given as ``cors``);
    ``user_app``: the app ``http.app`` names, whose routes are served before graphrun's."""
    http = dict(http or {})
    if cors is not None:
        http["cors"] = cors
    disabled = {key for key in DISABLE_KEYS if http.get(key)}
    app = FastAPI(
        title="graphrun",
        version=graphrun.__version__,
        description="A production runtime for LangGraph agents, speaking the LangGraph Server API.",
        docs_url=None,  # served from the package's files instead of a CDN (docs.install, below)
        redoc_url=None,
    )
    app.state.services = svc
    app.state.configurable_headers = HeaderPolicy.of(http.get("configurable_headers"))
    settings = svc.settings
    policy = _policy(svc, app, custom_auth)
    app.state.policy = policy
    errors.install(app)
    for module in _routers(disabled):
        app.include_router(module.router)
    if "disable_meta" in disabled:  # as the official server: /ok, /info, /metrics and /docs go
        app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) not in META_PATHS]
    else:
        docs.install(app)
    user_routes = _merge(app, user_app) if user_app is not None else []
    if not http.get("disable_ui"):
        _console(app)
    _root(app, console=not http.get("disable_ui"), meta_routes="disable_meta" not in disabled)
    # Outermost first: Observe, CORS (so that every refusal inside, 429 and 413 too, carries its headers
    # for a browser to read, and preflights are answered uncounted and without credentials), the rate
    # limit's budget of refused credentials, the body limit, the user's middleware, authentication, the
    # rate limit per authenticated caller, the stream bound (per authenticated caller). With
    # `middleware_order: auth_first` the user's middleware goes inside.
    auth_first = http.get("middleware_order") == "auth_first"
    limiter = Limiter(settings.rate_limit, settings.redis_uri) if settings.rate_limit else None
    if settings.max_streams_per_owner:
        app.add_middleware(StreamBound, limit=settings.max_streams_per_owner)
    if user_app is not None and auth_first:
        _add_user_middleware(app, user_app)
    if limiter is not None:
        app.add_middleware(RateLimit.Caller, limiter=limiter)
    if policy is not None:
        user_open = None if http.get("enable_custom_route_auth") else _matcher(user_routes)
        is_open = _console_or(user_open)
        app.add_middleware(
            authz.Authenticate, policy=policy, open_paths=frozenset(settings.open_paths), is_open=is_open
        )
    if user_app is not None and not auth_first:
        _add_user_middleware(app, user_app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if limiter is not None:
        app.add_middleware(RateLimit, limiter=limiter)
    app.add_middleware(CORSMiddleware, **_cors(svc, http.get("cors"), policy is not None))
    app.add_middleware(Observe, headers=HeaderPolicy.of(http.get("logging_headers"), "logging_headers"))
    _security_schemes(app, (auth_config or {}).get("openapi"))
    # The request's server span (outermost, so that Observe and the routes run inside it). The official
    # instrumentation, configured by the standard OTEL_* variables; probes and scrapes make no spans.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/ok,/metrics,/health", exclude_spans=["receive", "send"]
    )
    prefix = (http.get("mount_prefix") or "").rstrip("/")
    return _mounted(app, prefix) if prefix else app


def _mounted(app: FastAPI, prefix: str) -> FastAPI:
    """``http.mount_prefix``, as the official server mounts it: every route under the prefix, and
    ``/ok`` and ``/metrics`` at the root too (so that probes and scrapes need not know it), with
    graphrun's own probes ``/health`` and ``/ready``. The app's lifespan and state are the mount's."""
    outer = FastAPI(lifespan=app.router.lifespan_context, docs_url=None, redoc_url=None, openapi_url=None)
    outer.state = app.state
    for route in meta.router.routes:
        if getattr(route, "path", None) in ("/ok", "/metrics", "/health", "/ready"):
            outer.router.routes.append(route)
    outer.mount(prefix, app)
    return outer


def _routers(disabled: set[str]) -> list[Any]:
    """graphrun's routers, less those ``http.disable_*`` turns off (as the official server groups them:
    the thread-stream protocol lives under /threads, crons under /runs)."""
    off = {
        "disable_assistants": {assistants},
        "disable_threads": {threads, protocol},
        "disable_runs": {runs, crons},
        "disable_store": {store},
        "disable_mcp": {mcp},
        "disable_a2a": {a2a},
    }
    gone = set().union(*(off.get(key, set()) for key in disabled))
    every = (meta, assistants, threads, crons, runs, protocol, store, stats, mcp, a2a)
    return [m for m in every if m not in gone]


def _merge(app: FastAPI, user_app: Starlette) -> list[BaseRoute]:
    """Serve the user's routes before graphrun's (so that theirs win, as on the official server), and
    run their app's lifespan inside graphrun's. FastAPI's own documentation routes of the user's app
    are left out: graphrun's ``/docs`` stays."""
    routes = [
        r
        for r in user_app.routes
        if not (getattr(r, "include_in_schema", True) is False and getattr(r, "path", None) in FASTAPI_OWN)
    ]
    app.router.routes[0:0] = routes
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(parent: Any) -> AsyncIterator[Any]:
        async with user_app.router.lifespan_context(user_app) as state, inner(parent):
            yield state

    app.router.lifespan_context = lifespan
    return routes


CONSOLE = Path(__file__).resolve().parent.parent / "console"


def _console(app: FastAPI) -> None:
    """The web console: static files shipped in the package, served at /console. Its page holds no data:
    what it shows it asks the API for, with the API key typed into it."""

    async def to_console(request: Request) -> RedirectResponse:
        return RedirectResponse("/console/")

    app.router.routes.append(Route("/console", to_console, include_in_schema=False))
    app.mount("/console", StaticFiles(directory=CONSOLE, html=True), name="console")


def _root(app: FastAPI, *, console: bool, meta_routes: bool) -> None:
    """``GET /``: a browser (asking for HTML) is led to the console; any other client gets what the
    official server answers there, ``/ok``'s answer."""

    async def root(request: Request) -> Response:
        if console and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/console/")
        return await meta.ok(request.app.state.services)

    if console or meta_routes:
        app.router.routes.append(Route("/", root, include_in_schema=False))


def _console_or(other: Any) -> Any:
    """The console's files and the documentation pages' assets are answered without credentials (the
    page asks for the key; the assets hold no data), and whatever ``other`` opens (the user's own
    routes)."""

    def is_open(scope: Scope) -> bool:
        path = scope["path"]
        return (
            path in ("/", "/console")
            or path.startswith("/console/")
            or docs.is_asset(path)
            or (other is not None and other(scope))
        )

    return is_open


def _add_user_middleware(app: FastAPI, user_app: Starlette) -> None:
    for middleware in reversed(user_app.user_middleware):  # the user's first is outermost, as in their app
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)


def _matcher(routes: list[BaseRoute]) -> Any:
    def is_open(scope: Scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in routes)

    return is_open if routes else None


def _policy(svc: Services, app: FastAPI, custom_auth: Auth | None) -> authz.Policy | None:
    settings = svc.settings
    digests = auth.load_keys(
        settings.api_keys, Path(settings.api_keys_file) if settings.api_keys_file else None
    )
    if custom_auth is not None and digests:
        raise graphrun_errors.ConfigError(
            "both auth.path (langgraph.json) and GRAPHRUN_API_KEYS/GRAPHRUN_API_KEYS_FILE are set: "
            "use one (your @auth.authenticate handler can check API keys itself)"
        )
    if custom_auth is not None:
        return authz.CustomPolicy(custom_auth, lambda scope: _path_params(app, scope))
    if digests:
        return authz.KeysPolicy(digests)
    return None


def _path_params(app: FastAPI, scope: Scope) -> dict[str, str]:
    """The path parameters of the route a request goes to, before routing (authentication runs first)."""
    for route in app.router.routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            return {k: str(v) for k, v in child.get("path_params", {}).items()}
    return {}


def _cors(svc: Services, cors: Mapping[str, Any] | None, auth_on: bool) -> dict[str, Any]:
    """``http.cors`` of langgraph.json when given, else the setting; the setting's default is every
    origin without auth and none with it (a browser page of any site must not use a user's key)."""
    options: dict[str, Any] = {
        "allow_origins": svc.settings.cors_origins_for(auth_on),
        "allow_methods": ["*"],
        "allow_headers": ["*"],
        # Browser clients read the run id from Content-Location, reconnect via Location and wait out a
        # 429 by Retry-After.
        "expose_headers": ["content-location", "location", "retry-after"],
    }
    if cors:
        unknown = sorted(set(cors) - CORS_KEYS)
        if unknown:
            raise graphrun_errors.ConfigError(
                f"http.cors: unknown key {unknown[0]!r} (known: {', '.join(sorted(CORS_KEYS))})"
            )
        options.update(cors)
    return options


def _security_schemes(app: FastAPI, openapi: Any) -> None:
    """``auth.openapi``: its ``securitySchemes`` and ``security`` go into ``/openapi.json``, as the
    official server documents them, so that generated clients send credentials."""
    if not openapi:
        return
    if not isinstance(openapi, Mapping):
        raise graphrun_errors.ConfigError("auth.openapi must be an object (securitySchemes, security)")
    base = app.openapi

    def schema() -> dict[str, Any]:
        document = base()
        schemes = openapi.get("securitySchemes") or {}
        document.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)
        if "security" in openapi:
            document["security"] = openapi["security"]
        return document

    app.openapi = schema  # type: ignore[method-assign]
