"""``graphrun.api.authz``: which ``@auth.on`` handler answers, what its answers mean, how the built-in
keys scope an owner, and how an ``@auth.authenticate`` result becomes the caller."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk import Auth

from graphrun import errors
from graphrun.api import auth as keys
from graphrun.api import authz, custom_auth

ALICE = authz.Caller(authz.User("alice", ["threads:write"]), "alice", ["threads:write"])


def _policy(auth: Auth) -> authz.CustomPolicy:
    if auth._authenticate_handler is None:
        _with_authenticate(auth)
    return authz.CustomPolicy(auth, lambda scope: {})


def _named_handlers(auth: Auth, calls: list[str]) -> None:
    """A handler at every level of specificity, each recording its name."""

    def recorder(name: str) -> Any:
        async def handler(ctx: Auth.types.AuthContext, value: Any) -> None:
            calls.append(name)

        return handler

    auth.on(recorder("global"))
    auth.on.threads(recorder("threads"))
    auth.on.threads.create(recorder("threads.create"))
    auth.on.store(recorder("store"))


@pytest.mark.parametrize(
    ("resource", "action", "expected"),
    [
        ("threads", "create", "threads.create"),
        ("threads", "read", "threads"),
        ("threads", "create_run", "threads"),
        ("assistants", "read", "global"),
        ("store", "put", "store"),
        ("crons", "delete", "global"),
    ],
)
async def test_the_most_specific_handler_answers(resource: str, action: str, expected: str) -> None:
    auth = Auth()
    calls: list[str] = []
    _named_handlers(auth, calls)

    await _policy(auth).authorize(ALICE, resource, action, {})

    assert calls == [expected]


def _with_authenticate(auth: Auth) -> Auth:
    @auth.authenticate
    async def who(authorization: str | None) -> str:
        return "alice"

    return auth


async def test_without_a_handler_everything_is_allowed() -> None:
    assert await _policy(Auth()).authorize(ALICE, "threads", "read", {}) is None


def test_an_auth_without_authenticate_is_refused_at_start_up() -> None:
    with pytest.raises(errors.ConfigError, match=r"no @auth\.authenticate"):
        authz.CustomPolicy(Auth(), lambda scope: {})


async def test_an_assertion_in_a_handler_is_forbidden_with_its_message() -> None:
    auth = Auth()

    @auth.on.store
    async def own(ctx: Auth.types.AuthContext, value: Any) -> None:
        assert value["namespace"][0] == ctx.user.identity, "Not authorized"

    with pytest.raises(errors.Forbidden, match="Not authorized"):
        await _policy(auth).authorize(ALICE, "store", "put", {"namespace": ("bob",)})


@pytest.mark.parametrize(
    ("answer", "scope"),
    [
        (None, None),
        (True, None),
        ({"owner": "alice"}, [{"owner": "alice"}]),
        ({"owner": {"$eq": "alice"}}, [{"owner": "alice"}]),
        ({"team": {"$contains": "red"}}, [{"team": ["red"]}]),
        ({"team": {"$contains": ["red", "blue"]}}, [{"team": ["red", "blue"]}]),
        ({"$or": [{"owner": "alice"}, {"public": True}]}, [{"owner": "alice"}, {"public": True}]),
        (
            {"org": "a", "$or": [{"owner": "alice"}, {"public": True}]},
            [{"org": "a", "owner": "alice"}, {"org": "a", "public": True}],
        ),
        (
            {"$and": [{"tags": {"$contains": "x"}}, {"tags": {"$contains": "y"}}]},
            [{"tags": ["x", "y"]}],
        ),
        ({"$and": [{"owner": "alice"}, {"owner": "bob"}]}, []),  # cannot both hold: nothing is seen
    ],
)
async def test_a_handlers_answer_is_the_callers_scope(answer: Any, scope: Any) -> None:
    auth = Auth()

    @auth.on
    async def handler(ctx: Auth.types.AuthContext, value: Any) -> Any:
        return answer

    assert await _policy(auth).authorize(ALICE, "threads", "read", {}) == scope


async def test_false_is_forbidden_and_an_http_exception_keeps_its_status() -> None:
    auth = Auth()

    @auth.on.threads.read
    async def deny(ctx: Auth.types.AuthContext, value: Any) -> bool:
        return False

    @auth.on.threads.create
    async def teapot(ctx: Auth.types.AuthContext, value: Any) -> None:
        raise Auth.exceptions.HTTPException(status_code=418, detail="no tea", headers={"x-why": "tea"})

    policy = _policy(auth)
    with pytest.raises(errors.Forbidden):
        await policy.authorize(ALICE, "threads", "read", {})
    with pytest.raises(errors.Refused) as refused:
        await policy.authorize(ALICE, "threads", "create", {})
    assert (refused.value.status, refused.value.message, refused.value.headers) == (
        418,
        "no tea",
        {"x-why": "tea"},
    )


async def test_an_unsupported_filter_operator_is_named() -> None:
    auth = Auth()

    @auth.on
    async def handler(ctx: Auth.types.AuthContext, value: Any) -> Any:
        return {"owner": {"$ne": "bob"}}

    with pytest.raises(errors.ConfigError, match=r"\$ne"):
        await _policy(auth).authorize(ALICE, "threads", "read", {})


async def test_handlers_see_the_user_and_may_stamp_metadata() -> None:
    auth = Auth()

    @auth.on.threads.create
    async def stamp(ctx: Auth.types.AuthContext, value: Any) -> Any:
        assert ctx.user.identity == "alice"
        assert ctx.permissions == ["threads:write"]
        assert (ctx.resource, ctx.action) == ("threads", "create")
        value.setdefault("metadata", {})["owner"] = ctx.user.identity
        return {"owner": ctx.user.identity}

    value: dict[str, Any] = {"metadata": {"topic": "x"}}
    scope = await _policy(auth).authorize(ALICE, "threads", "create", value)

    assert value["metadata"] == {"topic": "x", "owner": "alice"}
    assert authz.stamp_of(scope) == {"owner": "alice"}


@pytest.mark.parametrize(
    ("returned", "identity", "permissions"),
    [
        ("user-1", "user-1", []),
        ((["read", "write"], "user-4"), "user-4", ["read", "write"]),
        ({"identity": "user-2", "permissions": ["read"]}, "user-2", ["read"]),
        (authz.User("user-3", ["a", "b"]), "user-3", ["a", "b"]),
    ],
)
def test_what_authenticate_returns_becomes_the_caller(
    returned: Any, identity: str, permissions: list[str]
) -> None:
    caller = custom_auth._caller(returned)

    assert (caller.identity, list(caller.permissions)) == (identity, permissions)
    assert caller.user.identity == identity


def test_an_authenticate_result_without_identity_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="identity"):
        custom_auth._caller({"name": "nobody"})


def test_an_authenticate_handler_asking_for_an_unknown_parameter_is_refused_at_start_up() -> None:
    auth = Auth()

    @auth.authenticate
    async def who(cookie_jar: str) -> str:
        return "x"

    with pytest.raises(errors.ConfigError, match="cookie_jar"):
        _policy(auth)


# ---------------------------------------------------------------- the built-in keys


def _keys_policy() -> authz.KeysPolicy:
    return authz.KeysPolicy(keys.load_keys("alice=alice-key-0123456789abcdef", None))


async def test_keys_stamp_the_owner_over_what_the_client_says() -> None:
    value: dict[str, Any] = {"metadata": {"owner": "mallory", "topic": "x"}}

    scope = await _keys_policy().authorize(ALICE, "threads", "create", value)

    assert value["metadata"] == {"owner": "alice", "topic": "x"}
    assert scope == [{"owner": "alice"}]


async def test_keys_let_everyone_read_the_system_assistants() -> None:
    scope = await _keys_policy().authorize(ALICE, "assistants", "search", {})

    assert authz.in_scope(scope, {"created_by": "system", "graph_id": "agent"})
    assert authz.in_scope(scope, {"owner": "alice"})
    assert not authz.in_scope(scope, {"owner": "bob"})
    # ... but only to read them: changing one is the owner's alone.
    update = await _keys_policy().authorize(ALICE, "assistants", "update", {})
    assert not authz.in_scope(update, {"created_by": "system"})


@pytest.mark.parametrize(
    ("action", "namespace", "seen"),
    [
        ("get", ("alice", "prefs"), ("alice", "prefs")),
        ("get", ("bob", "prefs"), None),
        ("search", (), ("alice",)),
        ("search", ("bob",), None),
        ("list_namespaces", (), ("alice",)),
    ],
)
async def test_keys_keep_an_owner_in_its_store_namespaces(
    action: str, namespace: tuple[str, ...], seen: tuple[str, ...] | None
) -> None:
    value: dict[str, Any] = {"namespace": namespace}

    await _keys_policy().authorize(ALICE, "store", action, value)

    assert value["namespace"] == seen


@pytest.mark.parametrize("action", ["put", "delete"])
async def test_keys_refuse_writes_outside_the_owners_namespaces(action: str) -> None:
    with pytest.raises(errors.Forbidden, match="start with 'alice'"):
        await _keys_policy().authorize(ALICE, "store", action, {"namespace": ("shared",)})
