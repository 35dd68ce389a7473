"""Who is calling, and what they may touch.

A *policy* answers two questions: who a request comes from (``authenticate``, in the ``Authenticate``
middleware, before any route runs) and what that caller may do to a resource (``authorize``, in the
routes, where the resource is known). There are two:

* ``KeysPolicy``, the built-in API keys: each key names an owner; what an owner creates is stamped
  ``metadata.owner`` and only that owner sees it (the system assistants of the configured graphs are
  everyone's). Store namespaces of an owner start with the owner's name.
* ``CustomPolicy``, a ``langgraph_sdk.Auth`` object from ``auth.path`` in ``langgraph.json``, called as
  the official server calls it: ``@auth.authenticate`` with the request's parts by parameter name, then
  the most specific ``@auth.on…`` handler for each resource and action, which may refuse, add metadata
  to ``value``, or return a filter.

``authorize`` answers the caller's *scope*: None (everything), or metadata filters of which a resource's
metadata must contain one. A resource out of scope is answered as missing (404), never 403, so that ids
say nothing about resources one may not see.

This module holds the built-in ``KeysPolicy`` and the request's side: the ``Authenticate`` middleware and
the ``Access`` a route is given. The caller and its scope are ``api/callers.py``, ``CustomPolicy`` and its
filter language ``api/custom_auth.py``; both are re-exported here, the one import path the routes use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrun import errors
from graphrun.api.auth import ApiKeys
from graphrun.api.callers import RESERVED_METADATA as RESERVED_METADATA
from graphrun.api.callers import SYSTEM as SYSTEM
from graphrun.api.callers import Caller as Caller
from graphrun.api.callers import Policy as Policy
from graphrun.api.callers import Scope_ as Scope_
from graphrun.api.callers import User as User
from graphrun.api.callers import in_scope as in_scope
from graphrun.api.callers import run_configurable as run_configurable
from graphrun.api.callers import stamp_of as stamp_of
from graphrun.api.custom_auth import CustomPolicy as CustomPolicy
from graphrun.api.limits import presented_credential, send_error
from graphrun.types import Json

log = structlog.get_logger("graphrun.auth")


# ---------------------------------------------------------------- built-in API keys


class KeysPolicy:
    """Every request carries a key (``x-api-key`` or ``Authorization: Bearer``); its owner owns what it
    creates and sees only that, plus the system assistants."""

    def __init__(self, digests: dict[str, str]) -> None:
        self.keys = ApiKeys(digests)

    async def authenticate(self, request: Request) -> Caller:
        presented = presented_credential(request.headers.raw)
        owner = self.keys.owner(presented) if presented else None
        if owner is None:
            raise errors.Refused(
                "missing or unknown API key: send it as x-api-key or Authorization: Bearer",
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        return Caller(User(owner), owner)

    async def authorize(self, caller: Caller, resource: str, action: str, value: Json) -> Scope_:
        owner = {"owner": caller.identity}
        if resource == "store":
            _own_namespace(caller.identity, action, value)
            return None
        if action in ("create", "create_run", "update") and isinstance(value.get("metadata"), dict):
            value["metadata"]["owner"] = caller.identity  # a client cannot give its things away
        elif action in ("create", "create_run"):
            value["metadata"] = dict(owner)
        if resource == "assistants" and action in ("read", "search"):
            return [owner, SYSTEM]
        return [owner]


def _own_namespace(owner: str, action: str, value: Json) -> None:
    """An owner's store namespaces start with its name: writes elsewhere are refused; reads elsewhere
    see nothing (``namespace`` None); a search or listing with no prefix is narrowed to the owner's."""
    namespace = tuple(value.get("namespace") or ())
    if action in ("put", "delete"):
        if namespace[:1] != (owner,):
            raise errors.Forbidden(
                f"store namespaces of owner {owner!r} start with {owner!r}; got {list(namespace)!r}"
            )
    elif not namespace and action in ("search", "list_namespaces"):
        value["namespace"] = (owner,)
    elif namespace[:1] != (owner,):
        value["namespace"] = None


# ---------------------------------------------------------------- a user's langgraph_sdk.Auth


# ---------------------------------------------------------------- the request's side


class Authenticate:
    """Every request but the open paths (``GRAPHRUN_AUTH_OPEN_PATHS``: probes, by default, as a load
    balancer or kubelet has no credentials) and CORS preflights is authenticated before it reaches a
    route; the caller goes in the request's state."""

    def __init__(
        self,
        app: ASGIApp,
        policy: Policy,
        open_paths: frozenset[str],
        is_open: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.open_paths = open_paths
        self.is_open = is_open  # more requests answered without credentials (a user's own routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._socket(scope, receive, send)
            return
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or scope["path"] in self.open_paths
            or (self.is_open is not None and self.is_open(scope))
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            caller = await self.policy.authenticate(request)
        except errors.Refused as exc:
            headers = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            await send_error(send, exc.status, exc.message, headers)
            return
        except errors.ConfigError as exc:
            log.error("auth_handler_failed", error=exc.message)
            await send_error(send, 500, f"authentication failed: {exc.message}")
            return
        except Exception as exc:  # the user's handler broke: its text may hold credentials, so only the type
            log.exception("auth_handler_failed", error=type(exc).__name__)
            await send_error(
                send, 500, f"authentication failed: @auth.authenticate raised {type(exc).__name__}"
            )
            return
        scope.setdefault("state", {})["caller"] = caller
        if "_body" in request.__dict__:  # the handler read the body: the route reads it again
            receive = _replay(request.__dict__["_body"], receive)
        await self.app(scope, receive, send)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket's handshake is authenticated as a GET of its path with no body; a refused one
        is closed before it is accepted, which the client sees as a 403 (as Starlette's
        AuthenticationMiddleware does on the official server)."""
        if scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        try:
            handshake = Request({**scope, "type": "http", "method": "GET"}, _empty)
            caller = await self.policy.authenticate(handshake)
        except errors.Refused:
            await send({"type": "websocket.close", "code": 1008})
            return
        except Exception as exc:  # the user's handler broke: as for a request, only the type
            log.exception("auth_handler_failed", error=type(exc).__name__)
            await send({"type": "websocket.close", "code": 1011})
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


async def _empty() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


@dataclass
class Access:
    """The request's caller and policy, for the routes: ``await access.scope(resource, action, value)``."""

    policy: Policy | None
    caller: Caller | None
    _cache: dict[str, Any] = field(default_factory=dict)
    # The request headers ``http.configurable_headers`` passes on to the runs it creates.
    forwarded: dict[str, str] = field(default_factory=dict)

    @property
    def on(self) -> bool:
        return self.policy is not None and self.caller is not None

    @property
    def identity(self) -> str | None:
        return self.caller.identity if self.caller is not None else None

    async def scope(self, resource: str, action: str, value: Json) -> Scope_:
        if self.policy is None or self.caller is None:
            return None
        metadata = value.get("metadata")
        if resource == "assistants" and action in ("create", "update") and isinstance(metadata, dict):
            for key in RESERVED_METADATA:
                metadata.pop(key, None)
        return await self.policy.authorize(self.caller, resource, action, value)


def access_of(request: HTTPConnection) -> Access:
    policy = getattr(request.app.state, "policy", None)
    caller = getattr(request.state, "caller", None)
    headers = getattr(request.app.state, "configurable_headers", None)
    forwarded = headers.pick(request.headers) if headers is not None else {}
    return Access(policy, caller, forwarded=forwarded)


async def _access(request: Request) -> Access:
    return access_of(request)


AccessDep = Annotated[Access, Depends(_access)]


def as_uuid(value: str) -> uuid.UUID | str:
    """Ids in handler values are UUIDs, as the official server passes them."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value
