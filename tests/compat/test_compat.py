"""What a client of the official server relies on, checked in both modes: run context and its schema's
defaults, graph factories that take the server runtime, ``order_by`` on thread search, padded waits,
breakpoints on unknown nodes, cancel actions.

Each behaviour was observed on the official server (``langgraph dev``, langgraph-api 0.16.7) first; the
test says where graphrun goes further.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict, body_text, status_of, system_assistant_id
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

KEEPALIVE_S = 0.3
SERVER_ENV = {"GRAPHRUN_WAIT_KEEPALIVE_S": str(KEEPALIVE_S)}


def _seen(result: Any) -> dict[str, Any]:
    seen: dict[str, Any] = as_dict(result)["seen"]
    return seen


# ---------------------------------------------------------------- 1. context


async def test_a_run_without_context_gets_the_context_schema_defaults(client: LangGraphClient) -> None:
    result = await client.runs.wait(None, "ctx", input={})
    assert _seen(result) == {"type": "Ctx", "model": "default-model", "temperature": 0.5}


async def test_a_run_context_is_kept_to_the_keys_of_the_context_schema(client: LangGraphClient) -> None:
    result = await client.runs.wait(None, "ctx", input={}, context={"model": "m2", "not_in_schema": 1})
    assert _seen(result) == {"type": "Ctx", "model": "m2", "temperature": 0.5}


async def test_a_run_configurable_stands_for_its_context(client: LangGraphClient) -> None:
    """As on the official server: without ``context``, the request's ``config.configurable`` is it."""
    result = await client.runs.wait(
        None, "ctx", input={}, config={"configurable": {"model": "m3", "other": "x"}}
    )
    assert _seen(result) == {"type": "Ctx", "model": "m3", "temperature": 0.5}


async def test_configurable_and_context_together_are_refused(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await client.runs.wait(
            thread["thread_id"],
            "ctx",
            input={},
            config={"configurable": {"model": "m3"}},
            context={"model": "m4"},
        )
    assert status_of(caught.value) == 400
    assert "configurable and context" in body_text(caught.value)
    assert await client.runs.list(thread["thread_id"]) == []  # nothing was written


async def test_the_assistant_context_is_merged_under_the_run_context(client: LangGraphClient) -> None:
    assistant = await client.assistants.create("ctx", context={"model": "from-assistant"})
    plain = await client.runs.wait(None, assistant["assistant_id"], input={})
    assert _seen(plain) == {"type": "Ctx", "model": "from-assistant", "temperature": 0.5}
    merged = await client.runs.wait(None, assistant["assistant_id"], input={}, context={"temperature": 0.9})
    assert _seen(merged) == {"type": "Ctx", "model": "from-assistant", "temperature": 0.9}


# ---------------------------------------------------------------- 2. factories taking the server runtime


@pytest.mark.parametrize("graph_id", ["runtime_factory", "runtime_only", "named_runtime"])
async def test_a_factory_taking_the_server_runtime_is_told_it_builds_a_run(
    client: LangGraphClient, graph_id: str
) -> None:
    result = await client.runs.wait(None, graph_id, input={}, context={"model": "m5"})
    assert _seen(result) == {
        "access_context": "threads.create_run",
        "has_store": True,
        "context": {"model": "m5"},
    }


@pytest.mark.parametrize("graph_id", ["runtime_factory", "runtime_only", "named_runtime"])
async def test_a_factory_taking_the_server_runtime_serves_reads_too(
    client: LangGraphClient, graph_id: str
) -> None:
    """Schemas, the graph drawing, state and history call the factory with a read runtime (no context);
    the factory asserts that it gets one."""
    schemas = await client.assistants.get_schemas(system_assistant_id(graph_id))
    assert schemas["context_schema"] is not None
    drawing = await client.assistants.get_graph(system_assistant_id(graph_id))
    assert {node["id"] for node in drawing["nodes"]} >= {"report"}
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], graph_id, input={})
    state = await client.threads.get_state(thread["thread_id"])
    assert as_dict(state["values"])["seen"]["access_context"] == "threads.create_run"
    assert len(await client.threads.get_history(thread["thread_id"])) >= 2
    await client.threads.update_state(thread["thread_id"], {"seconds": 1.0})


# ---------------------------------------------------------------- 4. order_by on thread search


async def test_thread_search_takes_order_by_and_orders_as_without_it(client: LangGraphClient) -> None:
    marker = {"order_by_test": str(time.time_ns())}
    for _ in range(3):
        await client.threads.create(metadata=marker)
    plain = [t["thread_id"] for t in await client.threads.search(metadata=marker)]
    assert len(plain) == 3
    for order_by in ("created_at", "created_at asc", "-updated_at", {"not": "a field"}, 42):
        found = await client.http.post("/threads/search", json={"metadata": marker, "order_by": order_by})
        assert [t["thread_id"] for t in found] == plain, order_by
    ascending = await client.http.post(
        "/threads/search",
        json={
            "metadata": marker,
            "order_by": "created_at desc",
            "sort_by": "created_at",
            "sort_order": "asc",
        },
    )
    assert [t["thread_id"] for t in ascending] == list(reversed(plain))  # sort_by decides


# ---------------------------------------------------------------- 5. waits padded with newlines


async def _timed_body(
    http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> list[tuple[float, bytes]]:
    """The response body as it arrived: (seconds since the request, bytes) per chunk."""
    start = time.monotonic()
    chunks: list[tuple[float, bytes]] = []
    async with http.stream(method, path, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("application/json")
        async for chunk in response.aiter_raw():
            chunks.append((time.monotonic() - start, chunk))
    return chunks


async def test_a_long_wait_is_padded_with_newlines_until_the_output(http: httpx.AsyncClient) -> None:
    seconds = 8 * KEEPALIVE_S
    chunks = await _timed_body(
        http, "POST", "/runs/wait", json={"assistant_id": "sleepy", "input": {"seconds": seconds}}
    )
    body = b"".join(c for _, c in chunks)
    padding = body[: len(body) - len(body.lstrip(b"\n"))]
    assert len(padding) >= 3, f"expected newlines while the run slept {seconds}s, got {body!r}"
    # The newlines came one at a time as the run went on, not all together with the output.
    newline_times = [t for t, c in chunks if c.strip(b"\n") == b""]
    assert newline_times
    assert newline_times[0] < chunks[-1][0]
    assert orjson.loads(body)["seen"] == {"slept": seconds}


async def test_a_short_wait_is_plain_json(http: httpx.AsyncClient) -> None:
    response = await http.post("/runs/wait", json={"assistant_id": "sleepy", "input": {"seconds": 0}})
    assert response.status_code == 200
    assert not response.content.startswith(b"\n")
    assert response.json()["seen"] == {"slept": 0}


async def test_a_long_join_is_padded_and_the_sdk_reads_both(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread = await client.threads.create()
    seconds = 6 * KEEPALIVE_S
    run = await client.runs.create(thread["thread_id"], "sleepy", input={"seconds": seconds})
    path = f"/threads/{thread['thread_id']}/runs/{run['run_id']}/join"
    joined, chunks = await asyncio.gather(
        client.runs.join(thread["thread_id"], run["run_id"]), _timed_body(http, "GET", path)
    )
    assert _seen(joined) == {"slept": seconds}
    assert b"".join(c for _, c in chunks).startswith(b"\n")
    waited = await client.runs.wait(thread["thread_id"], "sleepy", input={"seconds": seconds})
    assert _seen(waited) == {"slept": seconds}


# ---------------------------------------------------------------- 6. breakpoints on unknown nodes


async def test_a_breakpoint_on_an_unknown_node_is_taken_and_never_fires(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"], "ctx", input={}, interrupt_before=["no_such_node"], interrupt_after=["nope"]
    )
    assert _seen(result)["type"] == "Ctx"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


# ---------------------------------------------------------------- 7. cancel actions


@pytest.mark.parametrize("action", ["cancel", "interrupt", "something-newer"])
async def test_any_cancel_action_but_rollback_interrupts(client: LangGraphClient, action: str) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "sleepy", input={"seconds": 30})
    await eventually(
        lambda: client.runs.get(thread["thread_id"], run["run_id"]),
        lambda r: r["status"] == "running",
        what="the run to start",
    )
    await client.runs.cancel(thread["thread_id"], run["run_id"], action=action)  # type: ignore[arg-type]
    ended = await eventually(
        lambda: client.runs.get(thread["thread_id"], run["run_id"]),
        lambda r: r["status"] not in ("pending", "running"),
        what="the run to end",
    )
    assert ended["status"] == "interrupted"


async def test_bulk_cancel_takes_any_action_too(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "sleepy", input={"seconds": 30})
    await client.runs.cancel_many(thread_id=thread["thread_id"], run_ids=[run["run_id"]], action="cancel")  # type: ignore[arg-type]
    ended = await eventually(
        lambda: client.runs.get(thread["thread_id"], run["run_id"]),
        lambda r: r["status"] not in ("pending", "running"),
        what="the run to end",
    )
    assert ended["status"] == "interrupted"


# ---------------------------------------------------------------- 8. deleting a thread whatever its runs do


async def test_deleting_threads_while_their_runs_finish_always_succeeds(client: LangGraphClient) -> None:
    """Runs that end around the moment their thread is deleted: every delete answers 204. (The exact
    interleaving that used to answer 404 is pinned in tests/integration/test_delete_thread.py.)"""
    threads = [(await client.threads.create())["thread_id"] for _ in range(12)]
    for i, thread_id in enumerate(threads):
        await client.runs.create(thread_id, "sleepy", input={"seconds": 0.05 * (i % 4)})
    await asyncio.sleep(0.1)
    await asyncio.gather(*(client.threads.delete(t) for t in threads))
    for thread_id in threads:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            await client.threads.get(thread_id)
        assert status_of(caught.value) == 404


async def test_ok_lists_the_data_dependencies_and_checks_them_on_request(
    http: httpx.AsyncClient, target: Any
) -> None:
    """As the official server's ``/ok``: its in-memory runtime lists no dependency, its production
    runtime PostgreSQL and Redis (``skipped``, or checked with ``check_db=1``)."""
    production = not hasattr(target, "data_dir")
    plain, checked, bad = (
        await http.get("/ok"),
        await http.get("/ok", params={"check_db": "1"}),
        await http.get("/ok", params={"check_db": "yes"}),
    )
    names = ["postgres", "redis"] if production else []
    assert plain.json() == {"ok": True, "services": dict.fromkeys(names, "skipped")}
    assert (checked.status_code, checked.json()) == (
        200,
        {"ok": True, "services": dict.fromkeys(names, "healthy")},
    )
    assert bad.status_code == 400


async def test_a_threads_storage_counts_its_checkpoints_channels_and_writes(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    """``GET /threads/{id}/storage``, in the official server's shape (its in-memory runtime answers it)."""
    thread = await client.threads.create()
    empty = (await http.get(f"/threads/{thread['thread_id']}/storage")).json()
    assert empty == {
        "thread_id": thread["thread_id"],
        "total_bytes": 0,
        "checkpoints": {"count": 0, "bytes": 0},
        "channel_values": {"count": 0, "bytes": 0, "by_channel": {}},
        "pending_writes": {"count": 0, "bytes": 0},
    }
    await client.runs.wait(thread["thread_id"], "sleepy", input={"seconds": 0})
    storage = (await http.get(f"/threads/{thread['thread_id']}/storage")).json()
    history = await client.threads.get_history(thread["thread_id"], limit=100)
    assert storage["checkpoints"]["count"] == len(history)
    parts = (
        storage["checkpoints"]["bytes"]
        + storage["channel_values"]["bytes"]
        + storage["pending_writes"]["bytes"]
    )
    assert storage["total_bytes"] == parts > 0
    by_channel = storage["channel_values"]["by_channel"]
    assert by_channel, "the run's channels are counted"
    assert sum(c["versions"] for c in by_channel.values()) == storage["channel_values"]["count"]
    assert (await http.get(f"/threads/{uuid.uuid4()}/storage")).status_code == 404


async def test_a_cancelled_run_says_why(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    """``Run.cancel_reason`` (langgraph-sdk 0.4.13+): an explicit cancel, a newer run's ``interrupt``
    strategy, a stream closed with ``on_disconnect=cancel``; none for a run that was not cancelled."""

    async def running(thread_id: str, run_id: str) -> None:
        await eventually(
            lambda: client.runs.get(thread_id, run_id),
            lambda r: r["status"] == "running",
            what="the run to run",
            timeout_s=60,
        )

    async def ended(thread_id: str, run_id: str) -> dict[str, Any]:
        found = await eventually(
            lambda: client.runs.get(thread_id, run_id),
            lambda r: r["status"] not in ("pending", "running"),
            what="the run to end",
            timeout_s=60,
        )
        return as_dict(found)

    thread = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread, "sleepy", input={"seconds": 0})
    [done] = await client.runs.list(thread)
    assert done["cancel_reason"] is None

    slow = await client.runs.create(thread, "sleepy", input={"seconds": 30})
    await running(thread, slow["run_id"])
    await client.runs.cancel(thread, slow["run_id"])
    assert (await ended(thread, slow["run_id"]))["cancel_reason"] == "cancelled"

    first = await client.runs.create(thread, "sleepy", input={"seconds": 30})
    await running(thread, first["run_id"])
    second = await client.runs.create(thread, "sleepy", input={"seconds": 0}, multitask_strategy="interrupt")
    await client.runs.join(thread, second["run_id"])
    assert (await ended(thread, first["run_id"]))["cancel_reason"] == "superseded_by_interrupt"
    assert (await client.runs.get(thread, second["run_id"]))["cancel_reason"] is None

    body = {"assistant_id": "sleepy", "input": {"seconds": 30}, "on_disconnect": "cancel"}
    async with (  # a client of its own, closed with its connection once the run's first event came
        httpx.AsyncClient(base_url=str(http.base_url), timeout=60) as alone,
        alone.stream("POST", f"/threads/{thread}/runs/stream", json=body) as response,
    ):
        run_id = response.headers["content-location"].rsplit("/", 1)[-1]
        async for _ in response.aiter_lines():
            break
    assert (await ended(thread, run_id))["cancel_reason"] == "client_disconnect"


async def test_deleting_an_assistant_cancels_its_runs_and_with_delete_threads_takes_its_threads(
    client: LangGraphClient,
) -> None:
    """As on the official server: ``DELETE /assistants/{id}`` interrupts the assistant's runs in flight
    (graphrun's ``cancel_reason``: ``assistant_deleted``) and takes its crons; with
    ``delete_threads=true`` also the threads whose metadata names it, not others."""
    doomed = (await client.assistants.create("sleepy", name="doomed"))["assistant_id"]
    thread = (await client.threads.create())["thread_id"]
    slow = await client.runs.create(thread, doomed, input={"seconds": 30})
    await eventually(
        lambda: client.runs.get(thread, slow["run_id"]),
        lambda r: r["status"] == "running",
        what="the run to run",
        timeout_s=60,
    )
    await client.crons.create(doomed, schedule="0 0 1 1 *", input={"seconds": 0})

    await client.assistants.delete(doomed)

    ended = await eventually(
        lambda: client.runs.get(thread, slow["run_id"]),
        lambda r: r["status"] not in ("pending", "running"),
        what="the run to end",
        timeout_s=60,
    )
    assert (ended["status"], ended["cancel_reason"]) == ("interrupted", "assistant_deleted")
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await client.assistants.get(doomed)
    assert status_of(gone.value) == 404
    assert await client.crons.search(assistant_id=doomed) == []
    assert (await client.threads.get(thread))["thread_id"] == thread  # kept: not asked to delete it

    second = (await client.assistants.create("sleepy", name="doomed too"))["assistant_id"]
    its = (await client.threads.create(metadata={"assistant_id": second}))["thread_id"]
    other = (await client.threads.create(metadata={"assistant_id": str(uuid.uuid4())}))["thread_id"]
    await client.runs.create(its, second, input={"seconds": 30})

    await client.assistants.delete(second, delete_threads=True)

    for read in (client.threads.get(its), client.runs.list(its)):
        with pytest.raises(httpx.HTTPStatusError) as missing:
            await read
        assert status_of(missing.value) == 404
    assert (await client.threads.get(other))["thread_id"] == other
