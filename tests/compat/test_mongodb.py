"""graphrun with MongoDB as checkpointer and store (``GRAPHRUN_CHECKPOINTER=mongodb``,
``GRAPHRUN_STORE=mongodb``), in both modes, driven with the SDK: a run and its history, a fork, a thread's
TTL, a store item expiring. What the server says is checked against what MongoDB holds.

The server is the one ``scripts/services`` provides (``GRAPHRUN_TEST_MONGODB_URI``: a MongoDB, or the
MongoDB-compatible SecantusDB), with a database of this module's own, dropped after. The store's TTL comes
from ``mongodb.langgraph.json`` (``store.ttl.default_ttl`` 0.1 min): MongoDB's store keeps one TTL for
all its items, a TTL index that MongoDB's own monitor applies every 60 s, so an item goes 6 s to about
70 s after it was last written or read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from pymongo import MongoClient
from pymongo.database import Database

from tests.acceptance._support import unique
from tests.conformance._servers import MONGODB_ENV, mongodb_uri, with_database
from tests.harness.sdk import as_dict
from tests.harness.targets import Production
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

CONFIG = Path(__file__).resolve().parents[1] / "acceptance" / "mongodb.langgraph.json"
DATABASE = f"graphrun_test_{uuid.uuid4().hex[:12]}"  # this module's own, for both modes
URI = with_database(os.environ.get(MONGODB_ENV, ""), DATABASE)
SERVER_ENV = {
    "GRAPHRUN_CHECKPOINTER": "mongodb",
    "GRAPHRUN_CHECKPOINTER_URI": URI,
    "GRAPHRUN_STORE": "mongodb",
    "GRAPHRUN_STORE_URI": URI,
    "GRAPHRUN_TTL_SWEEP_INTERVAL_S": "0.2",
}
STORE_TTL_S = 6  # store.ttl.default_ttl in mongodb.langgraph.json, in seconds
TTL_MONITOR_S = 60  # how often MongoDB's TTL monitor deletes expired documents
SHORT_THREAD_TTL_MIN = 0.01  # 0.6 s


@pytest.fixture(scope="module", autouse=True)
def mongo() -> Iterator[Database[dict[str, Any]]]:
    """The database graphrun writes to, to see what it holds; dropped after the module. Set up before
    the servers (autouse), so that a missing MongoDB fails here, saying what to provide."""
    mongodb_uri()
    client: MongoClient[dict[str, Any]] = MongoClient(URI, serverSelectionTimeoutMS=5000)
    with client:
        yield client.get_default_database()
        client.drop_database(DATABASE)


def checkpoints_of(mongo: Database[dict[str, Any]], thread_id: str) -> int:
    return mongo["checkpoints"].count_documents({"thread_id": thread_id})


async def counted_thread(client: LangGraphClient, **create: Any) -> str:
    thread_id: str = (await client.threads.create(**create))["thread_id"]
    out = await client.runs.wait(thread_id, "counter", input={})
    assert out == {"count": 2, "trail": ["a", "b"]}
    return thread_id


async def test_a_run_and_its_history_are_kept_in_mongodb(
    client: LangGraphClient, mongo: Database[dict[str, Any]]
) -> None:
    thread_id = await counted_thread(client)

    history = await client.threads.get_history(thread_id, limit=10)

    assert [as_dict(s["metadata"])["step"] for s in history] == [2, 1, 0, -1]
    assert [s["values"] for s in history[:2]] == [
        {"count": 2, "trail": ["a", "b"]},
        {"count": 1, "trail": ["a"]},
    ]
    assert checkpoints_of(mongo, thread_id) == 4
    state = await client.threads.get_state(thread_id)
    assert state["values"] == {"count": 2, "trail": ["a", "b"]}
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_a_fork_from_an_earlier_checkpoint_keeps_both_branches(client: LangGraphClient) -> None:
    thread_id = await counted_thread(client)
    history = await client.threads.get_history(thread_id)
    first_head = history[0]["checkpoint"]["checkpoint_id"]
    after_a = next(s for s in history if as_dict(s["values"]).get("trail") == ["a"])

    forked = await client.threads.update_state(
        thread_id, {"trail": ["fork"]}, checkpoint_id=after_a["checkpoint"]["checkpoint_id"], as_node="a"
    )
    out = await client.runs.wait(thread_id, "counter", input=None)

    assert out == {"count": 2, "trail": ["a", "fork", "b"]}
    head = await client.threads.get_state(thread_id)
    assert head["parent_checkpoint"] is not None
    assert head["parent_checkpoint"]["checkpoint_id"] == forked["checkpoint"]["checkpoint_id"]
    old_branch = await client.threads.get_state(thread_id, checkpoint_id=first_head)
    assert old_branch["values"] == {"count": 2, "trail": ["a", "b"]}
    assert len(await client.threads.get_history(thread_id, limit=20)) == 6


async def test_a_thread_past_its_ttl_goes_with_its_checkpoints(
    client: LangGraphClient, http: httpx.AsyncClient, mongo: Database[dict[str, Any]]
) -> None:
    short = await counted_thread(client, ttl={"ttl": SHORT_THREAD_TTL_MIN, "strategy": "delete"})
    kept = await counted_thread(client)

    async def exists(thread_id: str) -> bool:
        return (await http.get(f"/threads/{thread_id}")).status_code == 200

    await eventually(lambda: exists(short), lambda found: not found, what="the short-lived thread to go")

    assert checkpoints_of(mongo, short) == 0
    assert mongo["checkpoint_writes"].count_documents({"thread_id": short}) == 0
    assert await exists(kept)
    assert checkpoints_of(mongo, kept) == 4


async def test_a_store_item_expires_after_the_stores_ttl(
    target: Any, client: LangGraphClient, mongo: Database[dict[str, Any]]
) -> None:
    """The store's TTL, as a TTL index; an item's own ``ttl`` is ignored by the MongoDB store
    (``test_mongodb_store_ignores_an_items_own_ttl`` in tests/integration/test_savers.py).

    The item's expiry is waited for in embedded mode only: it is MongoDB's TTL monitor that deletes it
    (up to ~126 s here), not graphrun, so the wait would show nothing more in the second mode;
    production mode keeps the checks up to the TTL index."""
    marker = unique()
    await client.store.put_item(["ttl", marker], "k", {"v": 1})

    item = await client.store.get_item(["ttl", marker], "k")
    found = await client.store.search_items(["ttl", marker])

    assert item is not None
    assert item["value"] == {"v": 1}
    assert [i["key"] for i in found["items"]] == ["k"]
    ttl_indexes = [
        (dict(i["key"]), i["expireAfterSeconds"])
        for i in mongo["store"].list_indexes()
        if "expireAfterSeconds" in i
    ]
    assert ttl_indexes == [({"updated_at": 1}, STORE_TTL_S)]
    if isinstance(target, Production):
        return
    await eventually(
        lambda: client.store.get_item(["ttl", marker], "k", refresh_ttl=False),
        lambda got: got is None,
        timeout_s=STORE_TTL_S + 2 * TTL_MONITOR_S,
        interval_s=1.0,
        what="MongoDB's TTL monitor to delete the item",
    )
    assert mongo["store"].count_documents({"namespace": ["ttl", marker]}) == 0
