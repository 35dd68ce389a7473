"""Per-request observability: a request id (the client's ``X-Request-ID``, else a new one) bound to every
log line of the request, the trace id in the response (``X-Trace-Id``), and the HTTP metrics by route
template. The request headers ``http.logging_headers`` names go in the request's log line (never
credentials), as the official server logs them. Pure ASGI, so that streamed responses pass through
untouched; it runs inside OpenTelemetry's FastAPI middleware, so the request's span is current here.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrun import metrics, telemetry
from graphrun.api.deps import HeaderPolicy

log = structlog.get_logger("graphrun.http")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Not worth a metric or a log of their own: scrapes and probes.
_QUIET = frozenset({"/metrics", "/ok"})


class Observe:
    def __init__(self, app: ASGIApp, headers: HeaderPolicy | None = None) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                trace_id = telemetry.current_trace_id()
                if trace_id:
                    headers.append((b"x-trace-id", trace_id.encode()))
                message = {**message, "headers": headers}
                if not responded:
                    responded = True
                    _observe(scope, status, time.perf_counter() - started, self.headers)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                if not responded:  # the app failed before answering (the error handler answered 500)
                    _observe(scope, status, time.perf_counter() - started, self.headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _observe(scope: Scope, status: int, seconds: float, policy: HeaderPolicy | None) -> None:
    route: Any = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    if template in _QUIET:
        return
    method = scope.get("method", "GET")
    extra: dict[str, Any] = {}
    if policy is not None:
        given = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        extra = {"headers": picked} if (picked := policy.pick(given)) else {}
    log.info(
        "http_request",
        method=method,
        path=scope.get("path"),
        route=template,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        **extra,
    )
    metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
    metrics.HTTP_LATENCY.labels(method, template).observe(seconds)
