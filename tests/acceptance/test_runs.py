"""Runs: wait, create/join, list/get/delete, batch, cancel, multitask strategies, stateless, streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import RunCreate, RunCreateMetadata, StreamPart

from tests.harness.sdk import as_dict, status_of, system_assistant_id
from tests.harness.waiting import eventually

from ._support import human, new_thread, slow_steps_done, until_running

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


# --- wait ---------------------------------------------------------------------------------------------------


async def test_wait_returns_final_values(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    out = await client.runs.wait(thread_id, "counter", input={"count": 0})
    assert out == {"count": 2, "trail": ["a", "b"]}

    runs = await client.runs.list(thread_id)
    assert len(runs) == 1
    assert runs[0]["status"] == "success"
    # A run created with a graph id is recorded against that graph's system assistant.
    assert runs[0]["assistant_id"] == system_assistant_id("counter")


async def test_wait_on_interrupt_then_resume(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    out = as_dict(await client.runs.wait(thread_id, "interrupting", input={"topic": "deploy"}))

    assert out["topic"] == "deploy"
    assert out["prepared"] is True
    assert "answer" not in out
    interrupts = out["__interrupt__"]
    assert [i["value"] for i in interrupts] == [{"question": "approve?"}]
    assert isinstance(interrupts[0]["id"], str)
    assert interrupts[0]["id"]
    # The run that hit interrupt() ended successfully; the thread is what is interrupted (reference notes).
    assert [r["status"] for r in await client.runs.list(thread_id)] == ["success"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    resumed = await client.runs.wait(thread_id, "interrupting", command={"resume": "yes"})

    assert resumed == {"topic": "deploy", "prepared": True, "answer": "yes"}
    assert [r["status"] for r in await client.runs.list(thread_id)] == ["success", "success"]
    thread = await client.threads.get(thread_id)
    assert thread["status"] == "idle"
    assert not thread["interrupts"]


async def test_wait_on_failing_graph_returns_the_error(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    out = await client.runs.wait(thread_id, "failing", input={}, raise_error=False)

    assert out == {"__error__": {"error": "ValueError", "message": "boom"}}
    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["error"]
    assert (await client.runs.get(thread_id, runs[0]["run_id"]))["status"] == "error"
    assert (await client.threads.get(thread_id))["status"] == "error"

    # By default the SDK turns the __error__ payload into an exception.
    with pytest.raises(Exception, match="ValueError: boom"):
        await client.runs.wait(thread_id, "failing", input={})


# --- create / join / get / list / delete --------------------------------------------------------------------


async def test_create_then_join_and_get(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    run = await client.runs.create(thread_id, "counter", input={"count": 5}, metadata={"tag": "bg"})

    assert run["thread_id"] == thread_id
    assert run["status"] in ("pending", "running")
    assert run["assistant_id"] == system_assistant_id("counter")
    assert run["multitask_strategy"] == "enqueue"  # the default (reference notes)
    assert as_dict(run["metadata"])["tag"] == "bg"

    out = await client.runs.join(thread_id, run["run_id"])
    assert out == {"count": 7, "trail": ["a", "b"]}

    fetched = await client.runs.get(thread_id, run["run_id"])
    assert fetched["run_id"] == run["run_id"]
    assert fetched["status"] == "success"
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_on_run_created_reports_ids(client: LangGraphClient) -> None:
    # The SDK reads the run id from the Content-Location header (reference notes).
    thread_id = await new_thread(client)
    seen: list[RunCreateMetadata] = []

    await client.runs.wait(thread_id, "counter", input={"count": 0}, on_run_created=seen.append)

    runs = await client.runs.list(thread_id)
    assert seen == [{"run_id": runs[0]["run_id"], "thread_id": thread_id}]


async def test_list_with_limit_offset_and_status(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0})
    # A string count makes node `a` raise TypeError: a run that ends in error without a dedicated graph.
    await client.runs.wait(thread_id, "counter", input={"count": "not a number"}, raise_error=False)
    await client.runs.wait(thread_id, "counter", input={"count": 0})

    runs = await client.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "error", "success"]  # newest first
    ids = [r["run_id"] for r in runs]

    assert [r["run_id"] for r in await client.runs.list(thread_id, limit=1)] == ids[:1]
    assert [r["run_id"] for r in await client.runs.list(thread_id, limit=2, offset=1)] == ids[1:]
    assert [r["run_id"] for r in await client.runs.list(thread_id, status="error")] == [ids[1]]
    assert [r["run_id"] for r in await client.runs.list(thread_id, status="success")] == [ids[0], ids[2]]
    assert await client.runs.list(thread_id, status="pending") == []


async def test_delete_run(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0})
    await client.runs.wait(thread_id, "counter", input={"count": 0})
    first, second = [r["run_id"] for r in await client.runs.list(thread_id)]

    await client.runs.delete(thread_id, second)

    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [first]
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.runs.get(thread_id, second)
    assert status_of(excinfo.value) == 404
    # Deleting a run does not touch the thread's state.
    assert (await client.threads.get_state(thread_id))["values"] == {
        "count": 2,
        "trail": ["a", "b", "a", "b"],
    }


async def test_create_batch(client: LangGraphClient) -> None:
    payloads = [
        # on_completion is not in the SDK's RunCreate type but is a field of the stateless run body.
        cast(RunCreate, {"assistant_id": "counter", "input": {"count": 10}, "on_completion": "keep"}),
        cast(RunCreate, {"assistant_id": "counter", "input": {"count": 20}, "on_completion": "keep"}),
    ]

    runs = await client.runs.create_batch(payloads)

    assert len(runs) == 2
    assert len({r["run_id"] for r in runs}) == 2
    assert len({r["thread_id"] for r in runs}) == 2
    results = [await client.runs.join(r["thread_id"], r["run_id"]) for r in runs]
    assert results == [{"count": 12, "trail": ["a", "b"]}, {"count": 22, "trail": ["a", "b"]}]
    for r in runs:
        assert (await client.runs.get(r["thread_id"], r["run_id"]))["status"] == "success"


# --- cancel and multitask strategies ------------------------------------------------------------------------


async def test_cancel_a_running_run(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={"delay": 0.5, "steps": 20})
    await slow_steps_done(client, thread_id, at_least=1)

    await client.runs.cancel(thread_id, run["run_id"], wait=True)

    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
    # Official: a run cancelled mid-way leaves tasks to run at the head, so the thread is "interrupted".
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    done = as_dict((await client.threads.get_state(thread_id))["values"])["done"]
    assert 1 <= len(done) < 20
    # Its progress is kept: a new run continues from the last checkpoint.
    out = as_dict(await client.runs.wait(thread_id, "slow", input={"delay": 0.0, "steps": len(done) + 2}))
    assert out["done"] == list(range(len(done) + 2))


async def test_reject_on_busy_thread_is_409_and_writes_nothing(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "slow", input={"delay": 0.5, "steps": 20})
    await until_running(client, thread_id, run["run_id"])
    before = [(r["run_id"], r["status"]) for r in await client.runs.list(thread_id)]

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.runs.create(
            thread_id, "slow", input={"delay": 0.0, "steps": 1}, multitask_strategy="reject"
        )

    assert status_of(excinfo.value) == 409
    after = [(r["run_id"], r["status"]) for r in await client.runs.list(thread_id)]
    assert after == before
    await client.runs.cancel(thread_id, run["run_id"], wait=True)


async def test_enqueue_runs_in_order_without_interleaving(client: LangGraphClient, tmp_path: Path) -> None:
    thread_id = await new_thread(client)
    log = tmp_path / "steps.log"
    first = await client.runs.create(thread_id, "slow", input={"delay": 0.3, "steps": 2, "log": str(log)})
    await until_running(client, thread_id, first["run_id"])

    second = await client.runs.create(thread_id, "slow", input={"delay": 0.3, "steps": 4, "log": str(log)})

    assert second["status"] == "pending"  # queued behind the running one
    out = as_dict(await client.runs.join(thread_id, second["run_id"]))
    assert out["done"] == [0, 1, 2, 3]
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "success"
    assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "success"
    # Both runs wrote to one log: one step after another, the second run continuing the first's state.
    lines = log.read_text().splitlines()
    assert lines == [f"{event} {i}" for i in range(4) for event in ("start", "end")]


async def test_interrupt_strategy_cancels_the_running_run(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    first = await client.runs.create(thread_id, "slow", input={"delay": 0.5, "steps": 20})
    await slow_steps_done(client, thread_id, at_least=1)

    second = await client.runs.create(
        thread_id, "slow", input={"delay": 0.0, "steps": 1}, multitask_strategy="interrupt"
    )
    await client.runs.join(thread_id, second["run_id"])

    # The interrupted run keeps its progress (ARCHITECTURE.md); the new one ran after it (reference notes).
    assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
    assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "success"


# --- stateless runs -----------------------------------------------------------------------------------------


async def test_stateless_wait_deletes_its_thread(client: LangGraphClient) -> None:
    before = await client.threads.count()
    seen: list[RunCreateMetadata] = []

    out = as_dict(await client.runs.wait(None, "echo", input=human("hi"), on_run_created=seen.append))

    assert out["messages"][-1]["content"] == "echo: hi"
    assert out["messages"][-1]["type"] == "ai"
    assert len(seen) == 1
    temporary = seen[0]["thread_id"]
    assert temporary
    await eventually(client.threads.count, lambda n: n == before, what="thread count back to its value")
    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.get(temporary)
    assert status_of(excinfo.value) == 404
    assert await client.threads.search(ids=[temporary]) == []


async def test_stateless_wait_keeps_its_thread_on_request(client: LangGraphClient) -> None:
    before = await client.threads.count()
    seen: list[RunCreateMetadata] = []

    await client.runs.wait(
        None,
        "echo",
        input=human("keep me"),
        on_completion="keep",
        on_run_created=seen.append,
    )

    thread_id = seen[0]["thread_id"]
    assert thread_id
    assert await client.threads.count() == before + 1
    state = await client.threads.get_state(thread_id)
    assert as_dict(state["values"])["messages"][-1]["content"] == "echo: keep me"


# --- streaming ----------------------------------------------------------------------------------------------


async def _collect(parts: Any) -> list[StreamPart]:
    return [part async for part in parts]


async def test_stream_values(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    events = await _collect(
        client.runs.stream(thread_id, "counter", input={"count": 0}, stream_mode="values")
    )

    assert [e.event for e in events] == ["metadata", "values", "values", "values"]
    run_id = events[0].data["run_id"]
    assert [r["run_id"] for r in await client.runs.list(thread_id)] == [run_id]
    assert [e.data for e in events[1:]] == [
        {"count": 0, "trail": []},
        {"count": 1, "trail": ["a"]},
        {"count": 2, "trail": ["a", "b"]},
    ]
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"


async def test_stream_values_and_updates(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    events = await _collect(
        client.runs.stream(thread_id, "counter", input={"count": 0}, stream_mode=["values", "updates"])
    )

    names = [e.event for e in events]
    assert names == ["metadata", "values", "updates", "values", "updates", "values"]
    assert events[0].data["run_id"]
    assert [e.data for e in events if e.event == "updates"] == [
        {"a": {"count": 1, "trail": ["a"]}},
        {"b": {"count": 2, "trail": ["b"]}},
    ]
    assert events[-1].data == {"count": 2, "trail": ["a", "b"]}


async def test_stream_messages_graph(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    events = await _collect(client.runs.stream(thread_id, "echo", input=human("yo")))

    assert [e.event for e in events] == ["metadata", "values", "values"]
    final = events[-1].data["messages"]
    assert [(m["type"], m["content"]) for m in final] == [("human", "yo"), ("ai", "echo: yo")]


async def test_stream_of_failing_run_ends_with_error_event(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)

    events = await _collect(client.runs.stream(thread_id, "failing", input={}, stream_mode="values"))

    assert events[0].event == "metadata"
    assert events[-1].event == "error"
    assert events[-1].data == {"error": "ValueError", "message": "boom"}
    assert [e.event for e in events].count("error") == 1
    assert (await client.runs.get(thread_id, events[0].data["run_id"]))["status"] == "error"


async def test_stateless_stream(client: LangGraphClient) -> None:
    events = await _collect(client.runs.stream(None, "counter", input={"count": 0}, stream_mode="updates"))

    assert [e.event for e in events] == ["metadata", "updates", "updates"]
    assert events[-1].data == {"b": {"count": 2, "trail": ["b"]}}
