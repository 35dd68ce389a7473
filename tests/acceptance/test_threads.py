"""Threads: create/get/update/delete, search and count, copy, state, history, and status after runs."""

from __future__ import annotations

from typing import Any, cast
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Checkpoint

from tests.harness.sdk import as_dict, body_text, status_of, system_assistant_id

from ._support import unique

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


async def _counter_thread(client: LangGraphClient, **metadata: Any) -> str:
    """A thread on which `counter` ran once: state {"count": 2, "trail": ["a", "b"]}."""
    thread_id = (await client.threads.create(metadata=metadata or None))["thread_id"]
    out = await client.runs.wait(thread_id, "counter", input={"count": 0})
    assert out == {"count": 2, "trail": ["a", "b"]}
    return thread_id


async def test_create_with_explicit_id_and_get(client: LangGraphClient) -> None:
    thread_id = str(uuid4())
    created = await client.threads.create(thread_id=thread_id, metadata={"owner": "ann"})
    assert created["thread_id"] == thread_id
    assert created["metadata"] == {"owner": "ann"}
    assert created["status"] == "idle"

    fetched = await client.threads.get(thread_id)
    assert fetched["thread_id"] == thread_id
    assert fetched["metadata"] == {"owner": "ann"}
    assert fetched["status"] == "idle"
    assert fetched["values"] is None  # no run has written state yet
    assert fetched["created_at"]
    assert fetched["updated_at"]


async def test_create_generates_a_uuid(client: LangGraphClient) -> None:
    created = await client.threads.create()
    assert len(created["thread_id"]) == 36
    assert (await client.threads.get(created["thread_id"]))["thread_id"] == created["thread_id"]


async def test_if_exists_do_nothing_returns_the_existing_thread(client: LangGraphClient) -> None:
    thread_id = str(uuid4())
    await client.threads.create(thread_id=thread_id, metadata={"v": 1})
    before = await client.threads.count()

    again = await client.threads.create(thread_id=thread_id, metadata={"v": 2}, if_exists="do_nothing")

    assert again["thread_id"] == thread_id
    assert again["metadata"] == {"v": 1}
    assert (await client.threads.get(thread_id))["metadata"] == {"v": 1}
    assert await client.threads.count() == before


@pytest.mark.parametrize("if_exists", ["raise", None])
async def test_if_exists_raise_is_409(client: LangGraphClient, if_exists: Any) -> None:
    # The SDK documents "raise" as the default when if_exists is not sent.
    thread_id = str(uuid4())
    await client.threads.create(thread_id=thread_id, metadata={"v": 1})
    before = await client.threads.count()

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.create(thread_id=thread_id, metadata={"v": 2}, if_exists=if_exists)

    assert status_of(excinfo.value) == 409
    assert thread_id in body_text(excinfo.value)
    assert (await client.threads.get(thread_id))["metadata"] == {"v": 1}
    assert await client.threads.count() == before


async def test_update_merges_metadata(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create(metadata={"a": 1, "b": 1}))["thread_id"]

    updated = await client.threads.update(thread_id, metadata={"b": 2, "c": 3})

    assert updated["metadata"] == {"a": 1, "b": 2, "c": 3}
    assert (await client.threads.get(thread_id))["metadata"] == {"a": 1, "b": 2, "c": 3}


async def test_delete(client: LangGraphClient) -> None:
    thread_id = await _counter_thread(client)
    before = await client.threads.count()

    await client.threads.delete(thread_id)

    assert await client.threads.count() == before - 1
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.get(thread_id)
    assert status_of(excinfo.value) == 404
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.get_state(thread_id)
    assert status_of(excinfo.value) == 404
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.delete(thread_id)
    assert status_of(excinfo.value) == 404


async def test_search_sort_limit_offset(client: LangGraphClient) -> None:
    marker = unique()
    ids = [(await client.threads.create(metadata={"suite": marker, "i": i}))["thread_id"] for i in range(3)]

    def order(threads: list[Any]) -> list[int]:
        return [t["metadata"]["i"] for t in threads]

    asc = await client.threads.search(metadata={"suite": marker}, sort_by="created_at", sort_order="asc")
    desc = await client.threads.search(metadata={"suite": marker}, sort_by="created_at", sort_order="desc")
    assert order(asc) == [0, 1, 2]
    assert order(desc) == [2, 1, 0]
    page = await client.threads.search(
        metadata={"suite": marker}, sort_by="created_at", sort_order="asc", limit=2, offset=1
    )
    assert order(page) == [1, 2]
    # the default order is newest first
    assert order(await client.threads.search(metadata={"suite": marker}, limit=1)) == [2]

    by_id = await client.threads.search(metadata={"suite": marker}, sort_by="thread_id", sort_order="asc")
    assert [t["thread_id"] for t in by_id] == sorted(ids)

    assert await client.threads.count(metadata={"suite": marker}) == 3
    assert await client.threads.search(metadata={"suite": unique()}) == []


async def test_status_after_success_interrupt_and_error_and_search_by_status(client: LangGraphClient) -> None:
    marker = unique()
    ok, paused, broken = [
        (await client.threads.create(metadata={"suite": marker, "name": name}))["thread_id"]
        for name in ("ok", "paused", "broken")
    ]

    await client.runs.wait(ok, "counter", input={"count": 0})
    await client.runs.wait(paused, "interrupting", input={"topic": "deploy"})
    await client.runs.wait(broken, "failing", input={}, raise_error=False)

    ok_thread = await client.threads.get(ok)
    assert ok_thread["status"] == "idle"
    assert ok_thread["values"] == {"count": 2, "trail": ["a", "b"]}
    assert not ok_thread["interrupts"]

    paused_thread = await client.threads.get(paused)
    assert paused_thread["status"] == "interrupted"
    # `interrupts` maps task ids to the interrupts raised in that task (official GET /threads/{id}).
    interrupts = [i for per_task in paused_thread["interrupts"].values() for i in per_task]
    assert [i["value"] for i in interrupts] == [{"question": "approve?"}]
    assert all(i["id"] for i in interrupts)

    state = await client.threads.get_state(paused)
    assert list(state["next"]) == ["ask"]
    assert [i["value"] for t in state["tasks"] for i in t["interrupts"]] == [{"question": "approve?"}]
    assert [i["value"] for i in state["interrupts"]] == [{"question": "approve?"}]

    assert (await client.threads.get(broken))["status"] == "error"

    def names(threads: list[Any]) -> list[str]:
        return [t["metadata"]["name"] for t in threads]

    assert names(await client.threads.search(metadata={"suite": marker}, status="idle")) == ["ok"]
    assert names(await client.threads.search(metadata={"suite": marker}, status="interrupted")) == ["paused"]
    assert names(await client.threads.search(metadata={"suite": marker}, status="error")) == ["broken"]
    assert await client.threads.search(metadata={"suite": marker}, status="busy") == []
    assert await client.threads.count(metadata={"suite": marker}, status="interrupted") == 1
    assert await client.threads.count(metadata={"suite": marker}) == 3

    # Search by state values (JSON containment).
    assert names(await client.threads.search(metadata={"suite": marker}, values={"count": 2})) == ["ok"]
    assert names(await client.threads.search(metadata={"suite": marker}, values={"topic": "deploy"})) == [
        "paused"
    ]
    assert await client.threads.count(metadata={"suite": marker}, values={"count": 2}) == 1


async def test_run_stamps_graph_and_assistant_into_thread_metadata(client: LangGraphClient) -> None:
    marker = unique()
    thread_id = await _counter_thread(client, suite=marker)

    metadata = as_dict((await client.threads.get(thread_id))["metadata"])
    assert metadata["suite"] == marker
    assert metadata["graph_id"] == "counter"
    assert metadata["assistant_id"] == system_assistant_id("counter")

    # agent-chat-ui finds its threads by these keys (reference notes).
    found = await client.threads.search(metadata={"suite": marker, "graph_id": "counter"})
    assert [t["thread_id"] for t in found] == [thread_id]


async def test_get_state_at_head_and_at_a_checkpoint(client: LangGraphClient) -> None:
    thread_id = await _counter_thread(client)

    head = await client.threads.get_state(thread_id)
    assert head["values"] == {"count": 2, "trail": ["a", "b"]}
    assert list(head["next"]) == []
    assert head["checkpoint"]["checkpoint_id"]
    assert head["parent_checkpoint"] is not None

    history = await client.threads.get_history(thread_id)
    after_a = next(s for s in history if as_dict(s["values"]).get("trail") == ["a"])
    checkpoint_id = after_a["checkpoint"]["checkpoint_id"]
    assert checkpoint_id is not None

    at = await client.threads.get_state(thread_id, checkpoint_id=checkpoint_id)
    assert at["values"] == {"count": 1, "trail": ["a"]}
    assert list(at["next"]) == ["b"]
    assert at["checkpoint"]["checkpoint_id"] == checkpoint_id

    at_by_object = await client.threads.get_state(thread_id, checkpoint=after_a["checkpoint"])
    assert at_by_object["values"] == {"count": 1, "trail": ["a"]}
    assert at_by_object["checkpoint"]["checkpoint_id"] == checkpoint_id


async def test_update_state_as_node(client: LangGraphClient) -> None:
    thread_id = await _counter_thread(client)
    head_before = await client.threads.get_state(thread_id)

    response = await client.threads.update_state(thread_id, {"trail": ["manual"]}, as_node="a")

    new_checkpoint = response["checkpoint"]["checkpoint_id"]
    assert new_checkpoint
    assert new_checkpoint != head_before["checkpoint"]["checkpoint_id"]
    state = await client.threads.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == new_checkpoint
    assert state["values"] == {
        "count": 2,
        "trail": ["a", "b", "manual"],
    }  # `trail` is reduced with operator.add
    assert list(state["next"]) == ["b"]  # as if `a` had just run
    assert as_dict(state["metadata"])["source"] == "update"

    # The next run continues from there: `b` runs once more.
    out = await client.runs.wait(thread_id, "counter", input=None)
    assert out == {"count": 3, "trail": ["a", "b", "manual", "b"]}


async def test_get_history_limit_and_metadata_filter(client: LangGraphClient) -> None:
    thread_id = await _counter_thread(client)

    history = await client.threads.get_history(thread_id, limit=10)
    # input (step -1), after START (0), after a (1), after b (2); newest first.
    assert [as_dict(s["metadata"])["step"] for s in history] == [2, 1, 0, -1]
    assert history[0]["values"] == {"count": 2, "trail": ["a", "b"]}
    assert history[1]["values"] == {"count": 1, "trail": ["a"]}
    assert (
        history[0]["checkpoint"]["checkpoint_id"]
        == (await client.threads.get_state(thread_id))["checkpoint"]["checkpoint_id"]
    )

    limited = await client.threads.get_history(thread_id, limit=2)
    assert [s["checkpoint"]["checkpoint_id"] for s in limited] == [
        s["checkpoint"]["checkpoint_id"] for s in history[:2]
    ]

    step_one = await client.threads.get_history(thread_id, metadata={"step": 1})
    assert [s["values"] for s in step_one] == [{"count": 1, "trail": ["a"]}]
    loop_steps = await client.threads.get_history(thread_id, metadata={"source": "loop"})
    assert [as_dict(s["metadata"])["step"] for s in loop_steps] == [2, 1, 0]


@pytest.mark.parametrize("form", ["config", "checkpoint"])
async def test_get_history_before(client: LangGraphClient, form: str) -> None:
    # Two shapes of `before` are in use. "config" is what the JS SDK sends (`getHistory(id, {before?:
    # Config})`, i.e. {"configurable": {...}}), and the only one official 0.16.7 answers correctly: it hands
    # `before` to the checkpointer as a RunnableConfig (langgraph_api.api.threads.get_thread_history_post).
    # "checkpoint" is the Python SDK's `Checkpoint` type and the official OpenAPI `CheckpointConfig` schema;
    # official 0.16.7 answers it with a 500 (KeyError 'configurable'), which graphrun must not copy.
    thread_id = await _counter_thread(client)
    history = await client.threads.get_history(thread_id, limit=10)
    second = history[1]["checkpoint"]
    if form == "config":
        before = cast(
            Checkpoint, {"configurable": {"thread_id": thread_id, "checkpoint_id": second["checkpoint_id"]}}
        )
    else:
        before = second

    older = await client.threads.get_history(thread_id, before=before, limit=10)

    assert [as_dict(s["metadata"])["step"] for s in older] == [0, -1]
    assert [s["checkpoint"]["checkpoint_id"] for s in older] == [
        s["checkpoint"]["checkpoint_id"] for s in history[2:]
    ]
    one = await client.threads.get_history(thread_id, before=before, limit=1)
    assert [as_dict(s["metadata"])["step"] for s in one] == [0]


async def test_copy_makes_a_new_thread_with_the_same_state_and_history(client: LangGraphClient) -> None:
    marker = unique()
    thread_id = await _counter_thread(client, suite=marker)
    original_history = await client.threads.get_history(thread_id)

    # ThreadsClient.copy is annotated `-> None` but returns the server's answer: the new thread.
    copied = as_dict(await client.http.post(f"/threads/{thread_id}/copy", json=None))
    copy_id = copied["thread_id"]

    assert copy_id != thread_id
    assert (await client.threads.get_state(copy_id))["values"] == {"count": 2, "trail": ["a", "b"]}
    copy_history = await client.threads.get_history(copy_id)
    assert [s["values"] for s in copy_history] == [s["values"] for s in original_history]
    assert [as_dict(s["metadata"])["step"] for s in copy_history] == [
        as_dict(s["metadata"])["step"] for s in original_history
    ]
    assert as_dict((await client.threads.get(copy_id))["metadata"])["suite"] == marker

    # The two threads are independent from now on.
    await client.runs.wait(copy_id, "counter", input={"count": 10})
    assert (await client.threads.get_state(copy_id))["values"] == {"count": 12, "trail": ["a", "b", "a", "b"]}
    assert (await client.threads.get_state(thread_id))["values"] == {"count": 2, "trail": ["a", "b"]}
