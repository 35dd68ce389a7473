"""Graphs with a LangGraph 1.2 ``DeltaChannel`` (``bench/delta/graphs.py``: ``messages`` kept as deltas,
beside the same graph with plain ``add_messages``) on every saver graphrun offers: SQLite, PostgreSQL,
Redis and MongoDB, each behind a real ``graphrun dev`` driven with the SDK.

State, history, a fork from an earlier checkpoint, a copy and a thread's TTL work as on the plain graph.
``keep_latest`` (``/threads/prune`` and a TTL's strategy) would delete the writes a delta thread's state is
rebuilt from: it is refused with 409 (the prune) or left undone (the TTL), and the thread stays whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conformance._servers import mongodb_uri, redis_stack_uri, with_database
from tests.harness.cluster import TEST_DATABASE_URI
from tests.harness.embedded import Server
from tests.harness.sdk import body_text, status_of
from tests.harness.targets import Target, production
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(240)]

CONFIG = Path(__file__).resolve().parent / "delta.langgraph.json"
# (mode, saver): embedded on each saver, and the production topology on its PostgreSQL saver.
TARGETS = [
    "embedded-sqlite",
    "embedded-postgres",
    "embedded-redis",
    "embedded-mongodb",
    "production-postgres",
]
TURNS = 3
SHORT_TTL_MIN = 0.01  # 0.6 s


def _saver_env(kind: str) -> dict[str, str]:
    env = {"GRAPHRUN_TTL_SWEEP_INTERVAL_S": "0.2", "GRAPHRUN_STORE": "sqlite"}
    if kind == "postgres":
        env.update(GRAPHRUN_CHECKPOINTER="postgres", GRAPHRUN_CHECKPOINTER_URI=TEST_DATABASE_URI)
    elif kind == "redis":
        env.update(GRAPHRUN_CHECKPOINTER="redis", GRAPHRUN_CHECKPOINTER_URI=redis_stack_uri())
    elif kind == "mongodb":
        uri = with_database(mongodb_uri(), f"graphrun_delta_{uuid.uuid4().hex[:12]}")
        env.update(GRAPHRUN_CHECKPOINTER="mongodb", GRAPHRUN_CHECKPOINTER_URI=uri)
    return env


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    mode, kind = request.param.split("-")
    base = tmp_path_factory.mktemp(f"delta-{request.param}")
    if mode == "production":
        with production(base, CONFIG, {"GRAPHRUN_TTL_SWEEP_INTERVAL_S": "0.2"}, name="delta") as deployment:
            yield deployment
        return
    server = Server(config=CONFIG, data_dir=base / "data", log_dir=base / "logs", extra_env=_saver_env(kind))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _texts(values: Any) -> list[str]:
    return [m["content"] for m in values["messages"]]


async def _conversation(client: LangGraphClient, graph: str, turns: int = TURNS, **create: Any) -> str:
    thread_id: str = (await client.threads.create(**create))["thread_id"]
    for turn in range(1, turns + 1):
        said: Any = {"messages": [{"role": "user", "content": f"m{turn}"}]}
        await client.runs.wait(thread_id, graph, input=said)
    return thread_id


async def _say(client: LangGraphClient, thread_id: str, text: str, **run: Any) -> Any:
    said: Any = {"messages": [{"role": "user", "content": text}]}
    return await client.runs.wait(thread_id, "delta", input=said, **run)


async def test_state_and_history_hold_every_message(client: LangGraphClient) -> None:
    thread_id = await _conversation(client, "delta")

    state: Any = await client.threads.get_state(thread_id)
    history: Any = await client.threads.get_history(thread_id, limit=50)

    assert _texts(state["values"]) == [t for n in (1, 2, 3) for t in (f"m{n}", reply(n))]
    # Newest first; each turn's end holds that turn's whole conversation.
    ends = [_texts(h["values"]) for h in history if h["next"] == [] and h["values"].get("messages")]
    assert [len(e) for e in ends] == [6, 4, 2]


def reply(turn: int) -> str:
    return f"Noted, that was message {turn}. Anything else I can help with?"


async def test_a_fork_from_an_earlier_checkpoint_keeps_both_branches(client: LangGraphClient) -> None:
    thread_id = await _conversation(client, "delta")
    history: Any = await client.threads.get_history(thread_id, limit=50)
    [after_first] = [h for h in history if h["next"] == [] and len(h["values"].get("messages", [])) == 2]

    await _say(client, thread_id, "fork", checkpoint_id=after_first["checkpoint"]["checkpoint_id"])

    state: Any = await client.threads.get_state(thread_id)
    assert _texts(state["values"]) == ["m1", reply(1), "fork", reply(2)]
    original: Any = await client.threads.get_state(
        thread_id, checkpoint_id=history[0]["checkpoint"]["checkpoint_id"]
    )
    assert len(original["values"]["messages"]) == 6


async def test_a_copy_has_the_whole_state_and_goes_on_apart(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = await _conversation(client, "delta")

    copy = (await http.post(f"/threads/{thread_id}/copy")).raise_for_status().json()
    await _say(client, copy["thread_id"], "only in the copy")

    copied: Any = await client.threads.get_state(copy["thread_id"])
    source: Any = await client.threads.get_state(thread_id)
    assert _texts(copied["values"])[:6] == _texts(source["values"])
    assert _texts(copied["values"])[6:] == ["only in the copy", reply(4)]
    assert len(source["values"]["messages"]) == 6


async def test_keep_latest_is_refused_for_a_delta_thread_and_nothing_is_pruned(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    delta = await _conversation(client, "delta")
    plain = await _conversation(client, "plain")
    before: Any = await client.threads.get_history(delta, limit=50)

    response = await http.post(
        "/threads/prune", json={"thread_ids": [plain, delta], "strategy": "keep_latest"}
    )

    assert response.status_code == 409, response.text
    assert "DeltaChannel" in response.json()["detail"]
    after: Any = await client.threads.get_history(delta, limit=50)
    assert len(after) == len(before)
    assert len(await client.threads.get_history(plain, limit=50)) > 1  # not pruned either: refused whole
    state: Any = await client.threads.get_state(delta)
    assert len(state["values"]["messages"]) == 6
    # The plain graph's thread alone is pruned to its latest checkpoint, its state kept.
    assert (
        await http.post("/threads/prune", json={"thread_ids": [plain], "strategy": "keep_latest"})
    ).json() == {"pruned_count": 1}
    assert len(await client.threads.get_history(plain, limit=50)) == 1
    plain_state: Any = await client.threads.get_state(plain)
    assert len(plain_state["values"]["messages"]) == 6


async def test_a_delta_thread_past_its_ttl_is_deleted(client: LangGraphClient) -> None:
    thread_id = await _conversation(client, "delta", ttl={"strategy": "delete", "ttl": SHORT_TTL_MIN})

    async def gone() -> int:
        try:
            await client.threads.get(thread_id)
        except httpx.HTTPStatusError as exc:
            return status_of(exc)
        return 200

    assert await eventually(gone, lambda status: status == 404, what="the thread's deletion") == 404


async def test_a_keep_latest_ttl_leaves_a_delta_thread_whole(client: LangGraphClient) -> None:
    thread_id = await _conversation(client, "delta", ttl={"strategy": "keep_latest", "ttl": SHORT_TTL_MIN})
    before: Any = await client.threads.get_history(thread_id, limit=50)
    touched = (await client.threads.get(thread_id))["updated_at"]

    # The sweep restarts the thread's TTL clock whether it pruned or (here) refused.
    await eventually(
        lambda: client.threads.get(thread_id),
        lambda t: t["updated_at"] != touched,
        what="a TTL sweep of the thread",
    )

    after: Any = await client.threads.get_history(thread_id, limit=50)
    assert len(after) == len(before)
    state: Any = await client.threads.get_state(thread_id)
    assert len(state["values"]["messages"]) == 6


async def test_refusals_say_why(client: LangGraphClient) -> None:
    thread_id = await _conversation(client, "delta", turns=1)

    with pytest.raises(httpx.HTTPStatusError) as refused:
        await client.threads.prune([thread_id], strategy="keep_latest")

    assert status_of(refused.value) == 409
    assert "strategy 'delete'" in body_text(refused.value)
