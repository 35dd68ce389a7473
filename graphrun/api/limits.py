"""The request body limit (``GRAPHRUN_MAX_BODY_BYTES``): a body over it is answered 413 before a route
sees it, so nothing is written. Pure ASGI: a ``Content-Length`` over the limit is refused at once, and a
body without one (chunked) is read up to the limit before the app sees it. Starlette and uvicorn bound
headers but not bodies, hence this."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import re
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
    """Also refuses (400) a JSON body nested deeper than ``MAX_JSON_DEPTH``: Python's parser takes up to
    about a thousand levels, but what the routes do with such a value (validate, store, stream) recurses
    past the interpreter's limit or orjson's (254), and that must not become a 500."""

    MAX_JSON_DEPTH = 128

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if self.max_bytes > 0 and length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, f"{int(length)} bytes")
            return
        content_type = headers.get(b"content-type", b"")
        is_json = not content_type or b"json" in content_type  # as FastAPI parses a body
        if not is_json and (length is not None or self.max_bytes <= 0):
            await self.app(scope, receive, send)  # within the limit: the server reads no more than it says
            return
        # Read it all first (a chunked body up to the limit), then hand it over. (Raising from a receive
        # the app awaits would reach FastAPI's body parsing, which answers 400.)
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if 0 < self.max_bytes < received:
                await self._refuse(send, f"more than {self.max_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        if is_json and json_depth(b"".join(m.get("body", b"") for m in messages)) > self.MAX_JSON_DEPTH:
            await send_error(
                send, 400, f"the JSON body is nested more than {self.MAX_JSON_DEPTH} levels deep"
            )
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: str) -> None:
        detail = (
            f"the request body ({size}) is over the limit of {self.max_bytes} bytes "
            "(GRAPHRUN_MAX_BODY_BYTES); nothing was done"
        )
        await send_error(send, 413, detail)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deep a JSON document nests (0 for a scalar), counted on the text without parsing it: strings
    are dropped, then the brackets left are summed up. (Not valid JSON: a number the parser refuses.)"""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", body))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets), initial=0))


class Limiter:
    """``GRAPHRUN_RATE_LIMIT`` (the ``limits`` library's notation, e.g. ``100/minute``) over a moving
    window, shared by the two middlewares that apply it. The window lives in process memory, or in Redis
    when the API has one (production mode), so that every API process counts the same requests. If Redis
    cannot be reached requests go through (an outage of the limiter must not become one of the API),
    logged once per outage."""

    ACCEPTED_KEPT = 10_000

    def __init__(self, limit: str, redis_uri: str = "") -> None:
        self.limit = parse_rate_limit(limit)
        if redis_uri:
            storage: Any = RedisStorage(
                "async+" + redis_uri, implementation="redispy", key_prefix="graphrun:ratelimit"
            )
        else:
            storage = MemoryStorage()
        self.strategy = MovingWindowRateLimiter(storage)
        self.failing = False
        self.accepted: OrderedDict[str, None] = OrderedDict()  # digests of credentials seen accepted

    async def retry_after(self, bucket: str) -> int:
        stats = await self.strategy.get_window_stats(self.limit, bucket)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def unavailable(self, exc: Exception) -> None:
        if not self.failing:
            log.warning("rate_limit_unavailable", error=f"{type(exc).__name__}: {exc}")
            self.failing = True


class RateLimit:
    """Requests per caller within ``GRAPHRUN_RATE_LIMIT``; past it, 429 with ``Retry-After``. Two parts,
    on either side of authentication:

    * ``RateLimit`` (outside it) keeps the budget of refused credentials per client address. Requests
      whose credential is refused (401) count against their address, and past that budget an address's
      credentials are refused unread, but for those this process has seen accepted. So a client inventing
      a new key (or re-spelling one) per request gets no new budget, and no more answers to its guesses:
      ``/metrics``, which checks keys but is not counted, is held to this budget too.
    * ``RateLimit.Caller`` (inside it) counts each request against its authenticated caller (the owner
      of an API key, the identity custom auth returned), else its address: one budget per identity,
      however its key is spelled and however many keys it has.

    Probes (``/ok``, ``/ready``) are not counted, nor are scrapes (``/metrics``), at the root or under
    ``http.mount_prefix``."""

    PROBES = frozenset({"/ok", "/ready"})
    NOT_COUNTED = PROBES | {"/metrics"}

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope) in self.PROBES:
            await self.app(scope, receive, send)
            return
        limiter, address, key = self.limiter, _address(scope), _credential(scope)
        failures = "unauthenticated:" + address
        try:
            refused = (
                key is not None
                and key not in limiter.accepted
                and not await limiter.strategy.test(limiter.limit, failures)
            )
            retry_after = await limiter.retry_after(failures) if refused else 0
        except Exception as exc:
            limiter.unavailable(exc)
            await self.app(scope, receive, send)
            return
        limiter.failing = False
        if not refused:
            await self.app(scope, receive, self._watching(send, key, failures) if key else send)
            return
        detail = (
            f"too many requests with a refused credential from {address}: the limit is "
            f"{limiter.limit} (GRAPHRUN_RATE_LIMIT)"
        )
        await send_error(send, 429, detail, [(b"retry-after", str(retry_after).encode())])

    def _watching(self, send: Send, key: str, failures: str) -> Send:
        """``send``, noting whether the credential was accepted: a refusal counts against the address."""
        limiter = self.limiter

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    limiter.accepted.pop(key, None)
                    with contextlib.suppress(Exception):  # the limiter's outage was logged above
                        await limiter.strategy.hit(limiter.limit, failures)
                else:
                    limiter.accepted[key] = None
                    limiter.accepted.move_to_end(key)
                    if len(limiter.accepted) > limiter.ACCEPTED_KEPT:
                        limiter.accepted.popitem(last=False)
            await send(message)

        return watched

    class Caller:
        """The count per authenticated caller (see ``RateLimit``); it sits inside authentication."""

        def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
            self.app = app
            self.limiter = limiter

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or _route_path(scope) in RateLimit.NOT_COUNTED:
                await self.app(scope, receive, send)
                return
            limiter = self.limiter
            caller = scope.get("state", {}).get("caller")
            bucket = "caller:" + caller.identity if caller is not None else "address:" + _address(scope)
            try:
                allowed = await limiter.strategy.hit(limiter.limit, bucket)
                retry_after = 0 if allowed else await limiter.retry_after(bucket)
            except Exception as exc:
                limiter.unavailable(exc)
                allowed = True
            if allowed:
                await self.app(scope, receive, send)
                return
            who = f"caller {caller.identity!r}" if caller is not None else _address(scope)
            detail = f"too many requests from {who}: the limit is {limiter.limit} (GRAPHRUN_RATE_LIMIT)"
            await send_error(send, 429, detail, [(b"retry-after", str(retry_after).encode())])


def presented_credential(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The credential a request presents, read one way for login and for the rate limit: the first
    ``x-api-key``, else the token of the first ``Authorization: Bearer`` (else its whole value), without
    the spaces around it."""
    api_key = authorization = None
    for name, value in headers:
        if name == b"x-api-key" and api_key is None:
            api_key = value
        elif name == b"authorization" and authorization is None:
            authorization = value
    if api_key:
        return api_key.decode("latin-1").strip()
    text = (authorization or b"").decode("latin-1").strip()
    if text[:7].lower() == "bearer ":
        return text[7:].strip()
    return text


def _route_path(scope: Scope) -> str:
    """The request's path below ``http.mount_prefix`` (the ASGI root path, which the path includes)."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _credential(scope: Scope) -> str | None:
    """A request's credential by digest, so that one key, however spelled, is one budget."""
    credential = presented_credential(scope["headers"])
    return "key:" + hashlib.sha256(credential.encode("latin-1")).hexdigest()[:32] if credential else None


def _address(scope: Scope) -> str:
    return str((scope.get("client") or ("unknown", 0))[0])


class StreamBound:
    """At most ``limit`` open event streams (``…/stream``, ``…/stream/events``) and long waits
    (``…/join``, ``…/wait``, ``/mcp``, whose ``tools/call`` waits for its run, A2A's ``POST /a2a/…``)
    per caller in this API process (``GRAPHRUN_MAX_STREAMS_PER_OWNER``); past it, 429 with
    ``Retry-After`` (a WebSocket, which counts as one stream however many subscriptions it holds, is
    refused at its handshake). Each holds a connection for as long as its run lasts (up to an hour),
    so they are counted together. The caller is the authenticated owner, else the client address. It
    sits inside authentication, which names the caller."""

    SUFFIXES = ("/stream", "/stream/events", "/join", "/wait")

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.open: dict[str, int] = {}

    @staticmethod
    def _a2a(scope: Scope, path: str) -> bool:
        """A2A's ``message/send`` waits for its run, ``message/stream`` streams it: any POST to an agent."""
        return path.startswith("/a2a/") and scope.get("method") == "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        holds = path.endswith(self.SUFFIXES) or path == "/mcp" or self._a2a(scope, path)
        if scope["type"] not in ("http", "websocket") or not holds:
            await self.app(scope, receive, send)
            return
        caller = scope.get("state", {}).get("caller")
        owner = caller.identity if caller is not None else _address(scope)
        if self.open.get(owner, 0) >= self.limit and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # refused before it was accepted: 403
            return
        if self.open.get(owner, 0) >= self.limit:
            detail = (
                f"too many open streams and waits: {self.limit} per caller "
                "(GRAPHRUN_MAX_STREAMS_PER_OWNER); close one, or join a run once rather than many times"
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
