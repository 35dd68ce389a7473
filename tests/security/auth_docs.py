"""The official docs' custom-auth examples, as a user would paste them into ``auth.py``: a bearer-token
``@auth.authenticate`` (the "resource auth" tutorial), a global handler that stamps and filters by owner,
resource-specific handlers with scoped permissions, and a store handler that asserts namespace
ownership."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

VALID_TOKENS: dict[str, dict[str, Any]] = {
    "user1-token": {"id": "user1", "name": "Alice", "permissions": ["threads:write"]},
    "user2-token": {"id": "user2", "name": "Bob", "permissions": ["threads:write"]},
    "reader-token": {"id": "reader", "name": "Rita", "permissions": []},
}

auth = Auth()


@auth.authenticate
async def get_current_user(authorization: str | None) -> Auth.types.MinimalUserDict:
    """Check that the user's token is valid."""
    assert authorization
    scheme, token = authorization.split()
    assert scheme.lower() == "bearer"
    if token not in VALID_TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    user = VALID_TOKENS[token]
    return {"identity": user["id"], "display_name": user["name"], "permissions": user["permissions"]}


@auth.on
async def add_owner(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    """Make resources private to their creator."""
    filters = {"owner": ctx.user.identity}
    metadata = value.setdefault("metadata", {})
    metadata.update(filters)
    return filters


@auth.on.threads.create
async def on_thread_create(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsCreate) -> None:
    """Only users with the write permission create threads; the creator owns them."""
    if "threads:write" not in ctx.permissions:
        raise Auth.exceptions.HTTPException(status_code=403, detail="Unauthorized")
    metadata = value.setdefault("metadata", {})
    metadata["owner"] = ctx.user.identity


@auth.on.threads.read
async def on_thread_read(ctx: Auth.types.AuthContext, value: Auth.types.ThreadsRead) -> Auth.types.FilterType:
    """Only let users read their own threads."""
    return {"owner": ctx.user.identity}


@auth.on.store()
async def authorize_store(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    """Each user's memories live under a namespace that starts with their id."""
    namespace: tuple[str, ...] = value["namespace"]
    assert namespace[0] == ctx.user.identity, "Not authorized"
