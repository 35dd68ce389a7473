"""``POST /threads/prune`` (both strategies), thread ``supersteps`` on create, and the ``keep_latest``
TTL strategy, through the SDK against both modes.

The official server (langgraph-api 0.16.7) was read for what a client observes: prune answers
``{"pruned_count": n}``, skips threads that do not exist, and checks ``threads.delete`` with auth;
``supersteps`` are applied with ``graph.abulk_update_state`` on ``metadata.graph_id``'s graph.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict, status_of
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parents[1] / "acceptance" / "langgraph.json"
SERVER_ENV = {"GRAPHRUN_TTL_SWEEP_INTERVAL_S": "0.2"}
SHORT_TTL_MIN = 0.01  # 0.6 s


async def _thread_with_runs(client: LangGraphClient, graph: str, runs: int) -> str:
    thread_id: str = (await client.threads.create())["thread_id"]
    for _ in range(runs):
        await client.runs.wait(thread_id, graph, input={})
    return thread_id


async def _values(client: LangGraphClient, thread_id: str) -> dict[str, Any]:
    return as_dict((await client.threads.get_state(thread_id))["values"])


async def _history_len(client: LangGraphClient, thread_id: str) -> int:
    return len(await client.threads.get_history(thread_id, limit=1000))


# ---------------------------------------------------------------- prune


async def test_prune_delete_removes_the_threads_and_skips_unknown_ids(client: LangGraphClient) -> None:
    gone = [await _thread_with_runs(client, "counter", 1) for _ in range(2)]
    kept = await _thread_with_runs(client, "counter", 1)

    result = await client.threads.prune([*gone, str(uuid.uuid4())])

    assert result == {"pruned_count": 2}
    for thread_id in gone:
        with pytest.raises(httpx.HTTPStatusError) as missing:
            await client.threads.get(thread_id)
        assert status_of(missing.value) == 404
    assert (await client.threads.get(kept))["thread_id"] == kept


async def test_prune_keep_latest_keeps_the_state_and_drops_the_history(client: LangGraphClient) -> None:
    thread_id = await _thread_with_runs(client, "counter", 3)
    before = await client.threads.get_state(thread_id)
    assert await _history_len(client, thread_id) > 3

    result = await client.threads.prune([thread_id], strategy="keep_latest")

    assert result == {"pruned_count": 1}
    after = await client.threads.get_state(thread_id)
    assert after["values"] == before["values"] == {"count": 6, "trail": ["a", "b"] * 3}
    assert after["checkpoint"]["checkpoint_id"] == before["checkpoint"]["checkpoint_id"]
    assert await _history_len(client, thread_id) == 1
    # The thread goes on from its kept state.
    await client.runs.wait(thread_id, "counter", input={})
    assert (await _values(client, thread_id))["count"] == 8


async def test_prune_keep_latest_keeps_a_pending_interrupt(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "interrupting", input={"topic": "t"})
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    assert await client.threads.prune([thread_id], strategy="keep_latest") == {"pruned_count": 1}

    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["ask"]
    assert state["interrupts"]
    await client.runs.wait(thread_id, "interrupting", command={"resume": "yes"})
    assert (await _values(client, thread_id))["answer"] == "yes"


async def test_prune_keep_latest_of_a_subgraph_thread_keeps_its_state(client: LangGraphClient) -> None:
    thread_id = await _thread_with_runs(client, "nested", 2)
    before = await client.threads.get_state(thread_id, subgraphs=True)

    assert await client.threads.prune([thread_id], strategy="keep_latest") == {"pruned_count": 1}

    assert (await client.threads.get_state(thread_id, subgraphs=True))["values"] == before["values"]
    assert await _history_len(client, thread_id) == 1


async def test_bad_prune_requests_are_refused_and_nothing_is_pruned(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = await _thread_with_runs(client, "counter", 1)
    for body in (
        {"thread_ids": [thread_id, "not-a-uuid"]},
        {"thread_ids": [thread_id], "strategy": "archive"},
        {"strategy": "delete"},
        {"thread_ids": thread_id},
    ):
        response = await http.post("/threads/prune", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"], body
    assert (await http.post("/threads/prune", json={"thread_ids": []})).json() == {"pruned_count": 0}
    assert (await client.threads.get(thread_id))["thread_id"] == thread_id
    assert await _history_len(client, thread_id) > 1


# ---------------------------------------------------------------- TTL keep_latest


async def test_a_keep_latest_ttl_prunes_the_thread_and_keeps_it(client: LangGraphClient) -> None:
    thread_id = await _thread_with_runs(client, "counter", 2)
    await client.threads.update(thread_id, metadata={}, ttl={"ttl": SHORT_TTL_MIN, "strategy": "keep_latest"})

    await eventually(
        lambda: _history_len(client, thread_id), lambda n: n == 1, what="the history to be pruned"
    )

    thread = await client.threads.get(thread_id)
    assert thread["values"] == {"count": 4, "trail": ["a", "b", "a", "b"]}
    assert (await _values(client, thread_id))["count"] == 4


# ---------------------------------------------------------------- supersteps


def _superstep(values: Any, as_node: str) -> dict[str, Any]:
    return {"updates": [{"values": values, "as_node": as_node}]}


async def test_a_thread_created_with_supersteps_has_their_state(client: LangGraphClient) -> None:
    thread = await client.threads.create(
        graph_id="counter",
        supersteps=[
            _superstep({"count": 1, "trail": ["a"]}, "a"),
            _superstep({"count": 2, "trail": ["b"]}, "b"),
        ],
    )

    assert thread["status"] == "idle"
    assert thread["values"] == {"count": 2, "trail": ["a", "b"]}
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"] == {"count": 2, "trail": ["a", "b"]}
    assert state["next"] == []
    assert await _history_len(client, thread["thread_id"]) == 2
    await client.runs.wait(thread["thread_id"], "counter", input={})
    assert (await _values(client, thread["thread_id"]))["count"] == 4


async def test_supersteps_can_leave_a_thread_waiting_at_an_interrupt(client: LangGraphClient) -> None:
    thread = await client.threads.create(
        graph_id="interrupting", supersteps=[_superstep({"topic": "t", "prepared": True}, "prepare")]
    )

    assert thread["status"] == "interrupted"
    assert (await client.threads.get_state(thread["thread_id"]))["next"] == ["ask"]


async def test_bad_supersteps_are_refused_and_no_thread_is_left(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    existing = (await client.threads.create(metadata={"graph_id": "counter"}))["thread_id"]
    before = await client.threads.count()
    good = [_superstep({"count": 1}, "a")]
    cases: list[tuple[dict[str, Any], int]] = [
        ({"supersteps": good}, 422),  # no graph_id to say whose nodes they are
        ({"metadata": {"graph_id": "nope"}, "supersteps": good}, 422),
        ({"metadata": {"graph_id": "counter"}, "supersteps": [_superstep({"count": 1}, "nope")]}, 422),
        ({"metadata": {"graph_id": "counter"}, "supersteps": [{"updates": [{"values": {}}]}]}, 422),
        ({"metadata": {"graph_id": "counter"}, "supersteps": [{"updates": []}]}, 422),
        (
            {
                "thread_id": existing,
                "if_exists": "do_nothing",
                "metadata": {"graph_id": "counter"},
                "supersteps": good,
            },
            409,
        ),
    ]
    for body, status in cases:
        response = await http.post("/threads", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["detail"], body
    assert await client.threads.count() == before
    assert await _history_len(client, existing) == 0
