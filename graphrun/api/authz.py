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

Written here rather than taken from a library: the ``Auth`` object is the official SDK's, but the server
side that calls it ships only inside the official (licensed) server.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, cast

import structlog
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrun import errors
from graphrun.api.auth import ApiKeys
from graphrun.api.limits import presented_credential, send_error
from graphrun.stores._json import contains
from graphrun.types import Json

log = structlog.get_logger("graphrun.auth")

# A caller's scope: None is everything; else a resource's metadata must contain one of these filters.
Scope_ = list[Json] | None

SYSTEM = {"created_by": "system"}  # the metadata of the configured graphs' own assistants
# Metadata keys only the server writes: a client's are dropped where a policy is on (an assistant a client
# marks ``created_by: system`` would otherwise be listed, and run, as everyone's).
RESERVED_METADATA = frozenset(SYSTEM)


class User:
    """The authenticated caller as handlers see it in ``ctx.user``: LangGraph's ``BaseUser`` protocol
    (attributes, and mapping access to what ``authenticate`` returned)."""

    def __init__(
        self,
        identity: str,
        permissions: Sequence[str] = (),
        display_name: str | None = None,
        is_authenticated: bool = True,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        self._identity = identity
        self._permissions = list(permissions)
        self._display_name = display_name or identity
        self._is_authenticated = is_authenticated
        self._fields = {
            **(fields or {}),
            "identity": identity,
            "permissions": self._permissions,
            "display_name": self._display_name,
            "is_authenticated": is_authenticated,
        }

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def permissions(self) -> list[str]:
        return self._permissions

    @property
    def display_name(self) -> str:
        return self._display_name

    @property
    def is_authenticated(self) -> bool:
        return self._is_authenticated

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def dict(self) -> dict[str, Any]:
        return dict(self._fields)

    def __repr__(self) -> str:
        return f"User(identity={self._identity!r})"


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: the object handlers get as ``ctx.user``, and its permissions."""

    user: Any
    identity: str
    permissions: Sequence[str] = ()


def run_configurable(caller: Caller) -> Json:
    """What a run's ``config.configurable`` carries of its caller, under the official server's names, so
    that a graph reads the authenticated user as the docs show (``config["configurable"]
    ["langgraph_auth_user"].get(...)``): the user's fields as ``@auth.authenticate`` returned them (JSON
    values only; the run is stored and executed elsewhere), its id and its permissions."""
    user = caller.user
    fields = (
        user.dict()
        if isinstance(user, User)
        else {
            "identity": caller.identity,
            "permissions": list(caller.permissions),
            "display_name": getattr(user, "display_name", caller.identity),
            "is_authenticated": bool(getattr(user, "is_authenticated", True)),
        }
    )
    try:
        fields = json.loads(json.dumps(fields))
    except (TypeError, ValueError):  # something not JSON: keep what BaseUser promises
        fields = {k: fields.get(k) for k in ("identity", "permissions", "display_name", "is_authenticated")}
    return {
        "langgraph_auth_user": fields,
        "langgraph_auth_user_id": caller.identity,
        "langgraph_auth_permissions": list(caller.permissions),
    }


class Policy(Protocol):
    async def authenticate(self, request: Request) -> Caller:
        """The caller, or ``errors.Refused`` (401 unless the policy says otherwise)."""
        ...

    async def authorize(self, caller: Caller, resource: str, action: str, value: Json) -> Scope_:
        """The caller's scope for ``action`` on ``resource``; may change ``value`` (metadata to stamp, a
        store namespace). ``errors.Forbidden``/``errors.Refused`` refuse the request."""
        ...


def in_scope(scope: Scope_, metadata: Json) -> bool:
    return scope is None or any(contains(metadata, wanted) for wanted in scope)


def stamp_of(scope: Scope_) -> Json:
    """What a resource created for a caller must carry to be in the caller's scope: the plain values of
    a single filter (``{"owner": "alice"}``); nothing when the scope is wider or not plain."""
    if scope is None or len(scope) != 1:
        return {}
    return {k: v for k, v in scope[0].items() if isinstance(v, (str, int, float, bool))}


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


_AUTH_PARAMETERS = frozenset(
    {
        "request",
        "path",
        "method",
        "path_params",
        "query_params",
        "headers",
        "authorization",
        "body",
        "scope",
        "scopes",
        "user",
    }
)


class CustomPolicy:
    """A ``langgraph_sdk.Auth`` object's handlers, called as the official server calls them."""

    def __init__(self, auth: Auth, path_params: Callable[[Scope], dict[str, str]]) -> None:
        self.auth = auth
        self._path_params = path_params
        self._handlers: dict[tuple[str, str], Callable[..., Awaitable[Any]] | None] = {}
        authenticate = auth._authenticate_handler
        if authenticate is None:  # as the official server: authorization alone would protect nothing
            raise errors.ConfigError(
                "auth.path: the Auth object has no @auth.authenticate handler; define one that "
                "returns the user (a user id, or a dict with 'identity')"
            )
        names = set(inspect.signature(authenticate).parameters)
        unknown = sorted(names - _AUTH_PARAMETERS)
        if unknown:
            raise errors.ConfigError(
                f"auth.path: the @auth.authenticate handler asks for {unknown!r}; it may take "
                f"{sorted(_AUTH_PARAMETERS)!r}"
            )
        self._authenticate = authenticate
        self._wants = names

    async def authenticate(self, request: Request) -> Caller:
        handler = self._authenticate
        arguments: dict[str, Any] = {}
        for name in self._wants:
            if name == "scope":
                arguments[name] = request.scope
            elif name == "scopes":
                arguments[name] = []  # the permissions are what this handler is about to say
            elif name == "user":
                arguments[name] = None
            elif name == "request":
                arguments[name] = request
            elif name == "path":
                arguments[name] = request.url.path
            elif name == "method":
                arguments[name] = request.method
            elif name == "path_params":
                arguments[name] = self._path_params(request.scope)
            elif name == "query_params":
                arguments[name] = request.query_params
            elif name == "headers":
                arguments[name] = dict(request.scope["headers"])
            elif name == "authorization":
                arguments[name] = request.headers.get("authorization")
            elif name == "body":
                raw = await request.body()
                try:
                    arguments[name] = json.loads(raw) if raw else None
                except ValueError:
                    arguments[name] = None  # not JSON: the route answers that
        try:
            if inspect.iscoroutinefunction(handler):
                result = await handler(**arguments)
            else:  # a plain function may block (a call to an identity provider): not on the loop
                result = await run_in_threadpool(cast(Callable[..., Any], handler), **arguments)
        except AuthHTTPException as exc:
            raise _refused(exc) from None
        except AssertionError as exc:  # the docs' handlers assert on the credentials they are given
            raise errors.Refused(str(exc) or "Unauthorized: the credentials were refused", 401) from None
        return _caller(result)

    async def authorize(self, caller: Caller, resource: str, action: str, value: Json) -> Scope_:
        handler = self._handler(resource, action)
        if handler is None:
            return None
        context = Auth.types.AuthContext(
            permissions=list(caller.permissions),
            user=caller.user,
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            result = await handler(ctx=context, value=value)
        except AuthHTTPException as exc:
            raise _refused(exc) from None
        except AssertionError as exc:  # the docs' examples assert; the official server answers 403
            raise errors.Forbidden(str(exc) or f"Forbidden: not allowed to {action} {resource}") from None
        if result is None or result is True:
            return None
        if result is False:
            raise errors.Forbidden(f"Forbidden: not allowed to {action} {resource}")
        if isinstance(result, dict):
            return _alternatives(result)
        raise errors.ConfigError(
            f"auth handler for {resource}.{action} returned {type(result).__name__}; "
            "expected None, a bool or a filter dict"
        )

    def _handler(self, resource: str, action: str) -> Callable[..., Awaitable[Any]] | None:
        """The most specific handler: resource and action, then the resource's, then the action's on
        every resource, then the global one (the last registered of each)."""
        key = (resource, action)
        if key not in self._handlers:
            found = None
            for candidate in (key, (resource, "*"), ("*", action), ("*", "*")):
                handlers = self.auth._handlers.get(candidate)
                if handlers:
                    found = handlers[-1]
                    break
            if found is None and self.auth._global_handlers:
                found = self.auth._global_handlers[-1]
            self._handlers[key] = found
        return self._handlers[key]


def _refused(exc: AuthHTTPException) -> errors.Refused:
    return errors.Refused(str(exc.detail), exc.status_code, dict(exc.headers or {}))


def _caller(result: Any) -> Caller:
    """What ``@auth.authenticate`` returned, as the caller: a user id, a ``MinimalUserDict``, an object
    with ``identity`` (and optionally ``permissions``), or a ``(permissions, user)`` pair."""
    if isinstance(result, tuple) and len(result) == 2:
        permissions, user = result
        caller = _caller(user)
        return Caller(caller.user, caller.identity, list(permissions))
    if isinstance(result, str):
        return Caller(User(result), result)
    if isinstance(result, Mapping):
        identity = result.get("identity")
        if not isinstance(identity, str):
            raise errors.ConfigError("@auth.authenticate returned a dict without a string 'identity'")
        permissions = list(result.get("permissions") or ())
        user = User(
            identity,
            permissions,
            result.get("display_name"),
            bool(result.get("is_authenticated", True)),
            result,
        )
        return Caller(user, identity, permissions)
    identity = getattr(result, "identity", None)
    if not isinstance(identity, str):
        raise errors.ConfigError(
            f"@auth.authenticate returned {type(result).__name__}; expected a user id, a dict with "
            "'identity', or an object with an identity"
        )
    return Caller(result, identity, list(getattr(result, "permissions", ()) or ()))


def _alternatives(result: Json) -> list[Json]:
    """A handler's filter as the caller's scope: the metadata documents of which a resource's metadata
    must contain one. The official filter language: ``{"k": v}`` and ``{"k": {"$eq": v}}`` are equality,
    ``{"k": {"$contains": v}}`` (a value or a list of them) membership of a list, keys are AND-ed,
    ``$and``/``$or`` take lists of filters, nested at most two deep. ``$or`` is spread out here into
    alternatives, so that the stores need only a containment test."""
    return [
        {k: list(v) if isinstance(v, _Members) else v for k, v in doc.items()}
        for doc in _spread(result, 0)
        if doc is not None
    ]


def _spread(result: Json, depth: int) -> list[Json | None]:
    if depth > 2:
        raise errors.ConfigError("auth filter: $and/$or nested more than two deep (the official limit)")
    alternatives: list[Json | None] = [{}]
    for key, condition in result.items():
        if key in ("$or", "$and"):
            if not isinstance(condition, list) or len(condition) < 2:
                raise errors.ConfigError(f"auth filter: {key} takes a list of at least two filters")
            groups = [_spread(group, depth + 1) for group in condition]
            if key == "$or":
                options = [doc for group in groups for doc in group]
            else:
                options = [{}]
                for group in groups:
                    options = [_merge(a, b) for a in options for b in group]
            alternatives = [_merge(a, b) for a in alternatives for b in options]
        else:
            alternatives = [_merge(a, {key: _wanted(key, condition)}) for a in alternatives]
    return alternatives


def _wanted(key: str, condition: Any) -> Any:
    if not isinstance(condition, dict):
        return condition
    unknown = sorted(set(condition) - {"$eq", "$contains"})
    if unknown or len(condition) != 1:
        raise errors.ConfigError(
            f"auth filter on {key!r} uses {sorted(condition)!r}; supported: a value, $eq, $contains"
        )
    if "$eq" in condition:
        return condition["$eq"]
    members = condition["$contains"]
    return _Members(members if isinstance(members, list) else [members])


class _Members(list[Any]):
    """The values a list in the metadata must hold (``$contains``), told apart from an equal list."""


def _merge(a: Json | None, b: Json | None) -> Json | None:
    """Both sets of conditions; None when they cannot both hold (two different values for one key)."""
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, value in b.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(merged[key], _Members) and isinstance(value, _Members):
            merged[key] = _Members([*merged[key], *(v for v in value if v not in merged[key])])
        elif merged[key] != value:
            return None
    return merged


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
