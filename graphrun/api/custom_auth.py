"""A user's ``langgraph_sdk.Auth`` object (``auth.path`` in ``langgraph.json``) as a policy: its
``@auth.authenticate`` handler called with the request's parts by parameter name, then the most specific
``@auth.on…`` handler for each resource and action, as the official server calls them; and the official
filter language those handlers return (``$eq``, ``$contains``, ``$and``/``$or``), turned into the
metadata alternatives the stores test by containment.

Written here rather than taken from a library: the ``Auth`` object is the official SDK's, but the server
side that calls it ships only inside the official (licensed) server.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from starlette.types import Scope

from graphrun import errors
from graphrun.api.callers import Caller, Scope_, User
from graphrun.types import Json

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
