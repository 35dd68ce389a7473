"""Requests and runs at the edges: what a careful review of the server found, kept from coming back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict, status_of
from tests.harness.waiting import eventually

from ._support import new_thread

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


async def _run_count(client: LangGraphClient, thread_id: str) -> int:
    return len(await client.runs.list(thread_id, limit=100))


async def test_a_batch_with_an_unknown_thread_writes_no_run(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    missing = "00000000-0000-4000-8000-000000000000"
    payloads = [
        {"assistant_id": "counter", "thread_id": thread_id, "input": {"count": 0, "trail": []}},
        {"assistant_id": "counter", "thread_id": missing, "input": {"count": 0, "trail": []}},
    ]

    response = await client.http.client.post("/runs/batch", json=payloads)

    assert response.status_code == 404
    assert missing in response.json()["detail"]
    assert await _run_count(client, thread_id) == 0


async def test_a_batch_with_an_invalid_item_writes_no_run(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    payloads = [
        {"assistant_id": "counter", "thread_id": thread_id, "input": {"count": 0, "trail": []}},
        {"assistant_id": "counter", "thread_id": thread_id, "command": {"resume": "x"}},
    ]

    response = await client.http.client.post("/runs/batch", json=payloads)

    assert response.status_code == 422
    assert "no pending interrupt" in response.json()["detail"]
    assert await _run_count(client, thread_id) == 0


@pytest.mark.parametrize(
    "values",
    [{"trail": 5}, [1, 2]],
    ids=["value-the-reducer-refuses", "not-an-object"],
)
async def test_update_state_with_values_the_graph_refuses_is_422_and_changes_nothing(
    client: LangGraphClient, values: object
) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0, "trail": []})
    before = await client.threads.get_state(thread_id)

    response = await client.http.client.post(
        f"/threads/{thread_id}/state", json={"values": values, "as_node": "a"}
    )

    assert response.status_code == 422
    assert "cannot update state" in response.json()["detail"]
    after = await client.threads.get_state(thread_id)
    assert after["checkpoint"] == before["checkpoint"]


async def test_state_at_an_unknown_checkpoint_is_404(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0, "trail": []})

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.get_state(thread_id, checkpoint_id="no-such-checkpoint")

    assert status_of(excinfo.value) == 404


async def test_store_search_with_an_unknown_operator_is_422(client: LangGraphClient) -> None:
    response = await client.http.client.post(
        "/store/items/search", json={"namespace_prefix": ["x"], "filter": {"n": {"$bogus": 1}}}
    )

    assert response.status_code == 422
    assert "$bogus" in response.json()["detail"]


async def test_a_nodes_own_timeout_is_an_error_not_a_run_timeout(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(thread_id, "node_timeout", input={})

    out = as_dict(await client.runs.join(thread_id, run["run_id"]))

    assert out["__error__"]["error"] == "TimeoutError"
    assert "GRAPHRUN_RUN_TIMEOUT_S" not in out["__error__"]["message"]
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "error"


async def test_cancelling_a_pending_stateless_run_deletes_its_thread(client: LangGraphClient) -> None:
    run = await client.runs.create(None, "counter", input={"count": 0, "trail": []}, after_seconds=60)
    thread_id = run["thread_id"]
    assert (await client.threads.get(thread_id))["thread_id"] == thread_id

    await client.runs.cancel(thread_id, run["run_id"], wait=True)

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.threads.get(thread_id)
    assert status_of(excinfo.value) == 404


async def test_a_cancel_while_the_graph_is_being_built_ends_the_run(client: LangGraphClient) -> None:
    thread_id = await new_thread(client)
    run = await client.runs.create(
        thread_id,
        "slow_factory",
        input={"count": 0, "trail": []},
        config={"configurable": {"build_delay": 2}},
    )
    await eventually(
        lambda: client.runs.get(thread_id, run["run_id"]),
        lambda r: r["status"] == "running",
        what="the run to be claimed",
    )

    await client.runs.cancel(thread_id, run["run_id"], wait=True)
    await asyncio.sleep(0.5)  # were it re-queued, it would be claimed again by now

    final = await client.runs.get(thread_id, run["run_id"])
    assert final["status"] == "interrupted"
    # cancelled before the graph existed: nothing ran, so nothing is pending at the thread's head
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def _thread_with_history(client: LangGraphClient) -> tuple[str, dict[str, object]]:
    thread_id = await new_thread(client)
    await client.runs.wait(thread_id, "counter", input={"count": 0, "trail": []})
    return thread_id, as_dict(await client.threads.get_state(thread_id))


async def test_a_run_from_a_checkpoint_the_thread_lacks_is_404_and_keeps_the_head(
    client: LangGraphClient,
) -> None:
    thread_id, before = await _thread_with_history(client)

    response = await client.http.client.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": "counter", "input": {"count": 0, "trail": []}, "checkpoint_id": "no-such"},
    )

    assert response.status_code == 404
    assert "no-such" in response.json()["detail"]
    assert await client.threads.get_state(thread_id) == before
    assert await _run_count(client, thread_id) == 1


async def test_a_state_update_at_a_checkpoint_the_thread_lacks_is_404_and_keeps_the_head(
    client: LangGraphClient,
) -> None:
    thread_id, before = await _thread_with_history(client)

    response = await client.http.client.post(
        f"/threads/{thread_id}/state",
        json={"values": {"trail": ["x"]}, "as_node": "a", "checkpoint_id": "no-such"},
    )

    assert response.status_code == 404
    assert await client.threads.get_state(thread_id) == before


@pytest.mark.parametrize(
    ("method", "path", "body", "names"),
    [
        ("POST", "/assistants", {"graph_id": "counter", "config": {"configurable": "x"}}, "configurable"),
        ("POST", "/runs/wait", {"assistant_id": "counter", "config": {"configurable": [1]}}, "configurable"),
        (
            "POST",
            "/runs/wait",
            {"assistant_id": "counter", "config": {"recursion_limit": 0}},
            "recursion_limit",
        ),
        ("POST", "/runs", {"assistant_id": "counter", "after_seconds": 1e12}, "after_seconds"),
        ("POST", "/threads/search", {"offset": 10**20}, "offset"),
        ("POST", "/assistants/search", {"offset": 10**20}, "offset"),
        ("POST", "/threads/search", {"select": ["nope"], "metadata": {"no": "match"}}, "nope"),
        ("POST", "/assistants/search", {"select": ["nope"], "metadata": {"no": "match"}}, "nope"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "ttl": 1e300}, "ttl"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}, "index": ["text"]}, "index"),
    ],
    ids=[
        "assistant-config-shape",
        "run-config-shape",
        "recursion-limit",
        "after-seconds-too-large",
        "thread-offset-too-large",
        "assistant-offset-too-large",
        "select-unknown-field",
        "assistant-select-unknown-field",
        "store-ttl-too-large",
        "store-index-unsupported",
    ],
)
async def test_out_of_shape_input_is_a_4xx_that_names_it(
    client: LangGraphClient, method: str, path: str, body: dict[str, object], names: str
) -> None:
    threads_before = await client.threads.count()
    assistants_before = await client.assistants.count()

    response = await client.http.client.request(method, path, json=body)

    assert response.status_code == 422, response.text
    assert names in response.json()["detail"]
    assert await client.threads.count() == threads_before
    assert await client.assistants.count() == assistants_before


@pytest.mark.parametrize(
    "query",
    ["history?limit=-1", "history?limit=5000", "runs?status=bogus", "runs?offset=100000000000000000000"],
)
async def test_out_of_range_query_parameters_are_422(client: LangGraphClient, query: str) -> None:
    thread_id = await new_thread(client)

    response = await client.http.client.get(f"/threads/{thread_id}/{query}")

    assert response.status_code == 422, response.text


async def test_a_checkpoint_with_a_misspelt_key_is_refused(client: LangGraphClient) -> None:
    thread_id, before = await _thread_with_history(client)

    response = await client.http.client.post(
        f"/threads/{thread_id}/runs/wait",
        json={
            "assistant_id": "counter",
            "input": {"count": 0, "trail": []},
            "checkpoint": {"chekpoint_id": "x"},
        },
    )

    assert response.status_code == 422
    assert "chekpoint_id" in response.json()["detail"]
    assert await client.threads.get_state(thread_id) == before
