"""``auth.path`` in langgraph.json: the official docs' Auth examples (``auth_docs.py``), unchanged, behind
a real server in both modes, driven with the official SDK and bearer tokens as the docs' clients send
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

CONFIG = Path(__file__).resolve().parent / "auth.langgraph.json"


def user(target: Any, token: str) -> LangGraphClient:
    return get_client(url=target.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)


async def _status(call: Any) -> int:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await call
    return refused.value.response.status_code


async def test_authenticate_refuses_missing_and_unknown_tokens(target: Any) -> None:
    async with httpx.AsyncClient(base_url=target.url) as http:
        missing = await http.post("/threads", json={})
        unknown = await http.post("/threads", json={}, headers={"Authorization": "Bearer nope"})
        probe = await http.get("/ok")
    assert missing.status_code == 401, missing.text
    assert unknown.status_code == 401, unknown.text
    assert unknown.json() == {"detail": "Invalid token"}
    assert probe.status_code == 200


async def test_the_owner_handler_makes_threads_private(target: Any) -> None:
    async with user(target, "user1-token") as alice, user(target, "user2-token") as bob:
        thread = await alice.threads.create(metadata={"topic": "plans"})
        tid = thread["thread_id"]
        assert thread["metadata"] == {"topic": "plans", "owner": "user1"}
        # The graph's own assistant serves every user, as on the official server.
        result = await alice.runs.wait(tid, "sleepy", input={"seconds": 0})
        assert result == {"seconds": 0, "seen": {"slept": 0}}

        assert await _status(bob.threads.get(tid)) == 404
        assert await _status(bob.threads.get_state(tid)) == 404
        assert await _status(bob.runs.wait(tid, "sleepy", input={"seconds": 0})) == 404
        assert await _status(bob.threads.delete(tid)) == 404
        assert tid not in {t["thread_id"] for t in await bob.threads.search(limit=100)}
        assert tid in {t["thread_id"] for t in await alice.threads.search(limit=100)}
        assert (await alice.threads.get(tid))["metadata"]["owner"] == "user1"  # type: ignore[index]


async def test_scoped_permissions_refuse_with_the_handlers_status(target: Any) -> None:
    async with user(target, "reader-token") as reader:
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await reader.threads.create()
    assert refused.value.response.status_code == 403
    assert refused.value.response.json() == {"detail": "Unauthorized"}


async def test_assistants_are_private_to_their_creator(target: Any) -> None:
    async with user(target, "user1-token") as alice, user(target, "user2-token") as bob:
        mine = await alice.assistants.create("sleepy", name="alice's")
        assert mine["metadata"]["owner"] == "user1"  # type: ignore[index]
        assert await _status(bob.assistants.get(mine["assistant_id"])) == 404
        assert await _status(bob.runs.wait(None, mine["assistant_id"], input={})) == 404
        found = await alice.runs.wait(None, mine["assistant_id"], input={"seconds": 0})
        assert found == {"seconds": 0, "seen": {"slept": 0}}


async def test_deleting_an_assistant_with_its_threads_takes_only_the_callers(target: Any) -> None:
    """``delete_threads=true`` skips the threads the caller may not delete, as the official server does."""
    async with user(target, "user1-token") as alice, user(target, "user2-token") as bob:
        aid = (await alice.assistants.create("sleepy", name="alice's"))["assistant_id"]
        hers = (await alice.threads.create(metadata={"assistant_id": aid}))["thread_id"]
        his = (await bob.threads.create(metadata={"assistant_id": aid}))["thread_id"]

        await alice.assistants.delete(aid, delete_threads=True)

        assert await _status(alice.threads.get(hers)) == 404
        assert (await bob.threads.get(his))["thread_id"] == his


async def test_the_store_handler_keeps_each_user_in_their_namespace(target: Any) -> None:
    async with user(target, "user1-token") as alice:
        await alice.store.put_item(["user1", "memories"], "m1", {"text": "likes tea"})
        item = await alice.store.get_item(["user1", "memories"], "m1")
        assert item is not None
        assert item["value"] == {"text": "likes tea"}
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await alice.store.put_item(["user2", "memories"], "m1", {"text": "planted"})
    assert refused.value.response.status_code == 403
    assert refused.value.response.json() == {"detail": "Not authorized"}


async def test_auth_openapi_describes_the_security_scheme(target: Any) -> None:
    async with httpx.AsyncClient(
        base_url=target.url, headers={"Authorization": "Bearer user1-token"}
    ) as http:
        document = (await http.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == [{"BearerAuth": []}]


async def test_a_graph_reads_the_authenticated_user_from_its_config(target: Any) -> None:
    async with user(target, "user1-token") as alice:
        thread = await alice.threads.create()
        # A client cannot pose as another user to its graph: the server's keys win.
        posing: Any = {"configurable": {"langgraph_auth_user_id": "user2"}}
        state = await alice.runs.wait(
            thread["thread_id"], "whoami", input={}, config=posing, raise_error=True
        )

    assert state == {
        "identity": "user1",
        "name": "Alice",
        "user_id": "user1",
        "permissions": ["threads:write"],
    }
