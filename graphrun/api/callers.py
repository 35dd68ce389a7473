"""Who a request comes from and what that leaves them: the caller (``User``, ``Caller``), what a run
carries of it (``run_configurable``), the ``Policy`` protocol every auth policy implements, and a caller's
*scope* (``in_scope``, ``stamp_of``). Shared by the built-in API-key policy and the custom-auth policy
(``api/custom_auth.py``); ``api/authz.py`` re-exports all of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request

from graphrun.stores._json import contains
from graphrun.types import Json

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
