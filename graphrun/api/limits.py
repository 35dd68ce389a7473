"""The request body limit (``GRAPHRUN_MAX_BODY_BYTES``): a body over it is answered 413 before a route
sees it, so nothing is written. Pure ASGI: a ``Content-Length`` over the limit is refused at once, and a
body without one (chunked) is read up to the limit before the app sees it. Starlette and uvicorn bound
headers but not bodies, hence this."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("graphrun.http")


async def send_error(
    send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer a request from ASGI middleware as the API answers errors: ``{"detail": …}``."""
    body = json.dumps({"detail": detail}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, f"{int(length)} bytes")
            return
        if length is not None:
            await self.app(scope, receive, send)  # within the limit: the server reads no more than it says
            return
        # No length (chunked): read it all first, up to the limit, then hand it over. (Raising from a
        # receive the app awaits would reach FastAPI's body parsing, which answers 400.)
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send, f"more than {self.max_bytes} bytes")
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: str) -> None:
        detail = (
            f"the request body ({size}) is over the limit of {self.max_bytes} bytes "
            "(GRAPHRUN_MAX_BODY_BYTES); nothing was done"
        )
        await send_error(send, 413, detail)


class RateLimit:
    """Requests per client (its address) within ``GRAPHRUN_RATE_LIMIT`` (the ``limits`` library's
    notation, e.g. ``100/minute``), over a moving window; past it, 429 with ``Retry-After``. The window
    lives in process memory, or in Redis when the API has one (production mode), so that every API process
    counts the same requests. Probes and scrapes are not counted. If Redis cannot be reached the request
    goes through (an outage of the limiter must not become one of the API), logged once per outage."""

    EXEMPT = frozenset({"/ok", "/ready", "/metrics"})
    ACCEPTED_KEPT = 10_000

    def __init__(self, app: ASGIApp, limit: str, redis_uri: str = "") -> None:
        self.app = app
        self.limit = parse_rate_limit(limit)
        if redis_uri:
            storage: Any = RedisStorage(
                "async+" + redis_uri, implementation="redispy", key_prefix="graphrun:ratelimit"
            )
        else:
            storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(storage)
        self._failing = False
        self._accepted: OrderedDict[str, None] = OrderedDict()  # digests of credentials seen accepted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        address = _address(scope)
        key = _credential(scope)
        # A credential is its own budget, but this runs before authentication: a client inventing a
        # new key per request would have a fresh budget each time. So the requests whose credential
        # is refused (401) also count against their address, and past that budget an address's
        # credentials are refused unread, but for those this process has seen accepted.
        failures = "unauthenticated:" + address
        try:
            refused = (
                key is not None
                and key not in self._accepted
                and not await self.limiter.test(self.limit, failures)
            )
            allowed = not refused and await self.limiter.hit(self.limit, key or address)
            retry_after = 0
            if not allowed:
                counted = failures if refused else key or address
                stats = await self.limiter.get_window_stats(self.limit, counted)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:
            if not self._failing:
                log.warning("rate_limit_unavailable", error=f"{type(exc).__name__}: {exc}")
                self._failing = True
            await self.app(scope, receive, send)
            return
        self._failing = False
        if allowed:
            await self.app(scope, receive, self._watching(send, key, failures) if key else send)
            return
        if refused:
            detail = (
                f"too many requests with a refused credential from {address}: the limit is "
                f"{self.limit} (GRAPHRUN_RATE_LIMIT)"
            )
        else:
            who = "this API key" if key else address
            detail = f"too many requests from {who}: the limit is {self.limit} (GRAPHRUN_RATE_LIMIT)"
        await send_error(send, 429, detail, [(b"retry-after", str(retry_after).encode())])

    def _watching(self, send: Send, key: str, failures: str) -> Send:
        """``send``, noting whether the credential was accepted: a refusal counts against the address."""

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    self._accepted.pop(key, None)
                    with contextlib.suppress(Exception):  # the limiter's outage was logged above
                        await self.limiter.hit(self.limit, failures)
                else:
                    self._accepted[key] = None
                    self._accepted.move_to_end(key)
                    if len(self._accepted) > self.ACCEPTED_KEPT:
                        self._accepted.popitem(last=False)
            await send(message)

        return watched


def _credential(scope: Scope) -> str | None:
    """A request's credential (an API key or bearer token) by digest, so that clients behind one
    address are told apart and one key is one budget."""
    headers = dict(scope["headers"])
    credential = headers.get(b"x-api-key") or headers.get(b"authorization")
    return "key:" + hashlib.sha256(credential).hexdigest()[:32] if credential else None


def _address(scope: Scope) -> str:
    return str((scope.get("client") or ("unknown", 0))[0])


class StreamBound:
    """At most ``limit`` open event streams (``…/stream``, ``…/stream/events``) per caller in this API
    process (``GRAPHRUN_MAX_STREAMS_PER_OWNER``); past it, 429 with ``Retry-After`` (a WebSocket, which
    counts as one stream however many subscriptions it holds, is refused at its handshake). The caller is the
    authenticated owner, else the client address. It sits inside authentication, which names the
    caller."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.open: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or not (
            path.endswith("/stream") or path.endswith("/stream/events")
        ):
            await self.app(scope, receive, send)
            return
        caller = scope.get("state", {}).get("caller")
        owner = caller.identity if caller is not None else _address(scope)
        if self.open.get(owner, 0) >= self.limit and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # refused before it was accepted: 403
            return
        if self.open.get(owner, 0) >= self.limit:
            detail = (
                f"too many open streams: {self.limit} per caller (GRAPHRUN_MAX_STREAMS_PER_OWNER); "
                "close one, or join a run's stream once rather than many times"
            )
            await send_error(send, 429, detail, [(b"retry-after", b"1")])
            return
        self.open[owner] = self.open.get(owner, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[owner] -= 1
            if not self.open[owner]:
                del self.open[owner]


def parse_rate_limit(text: str) -> RateLimitItem:
    """``100/minute`` (or ``100 per minute``, ``10/second``…); ``ValueError`` says what is wrong."""
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError(f"GRAPHRUN_RATE_LIMIT {text!r} is not a rate such as 100/minute") from exc
