"""Semantic store search (``store.index`` in langgraph.json) through the SDK, with a deterministic local
embedding function, on each store that can hold vectors here: SQLite with sqlite-vec (``graphrun dev``),
the in-memory store (``graphrun dev``), Redis with the Search module and PostgreSQL with pgvector
(``graphrun api`` + ``worker``).

PostgreSQL needs the pgvector extension: Debian 12's packages have none and this machine cannot fetch
its sources, so that case is skipped, saying so, where the extension is missing. SQLite needs a Python
whose sqlite3 loads extensions; the case is skipped, saying so, on one that cannot.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_client

from tests.acceptance._support import Server
from tests.compat.conftest import production
from tests.production._cluster import (
    Cluster,
    Procs,
    claimed_redis_db,
    fresh_database,
    production_env,
)

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

CONFIG = Path(__file__).resolve().parent / "semantic.langgraph.json"


def _has_pgvector(database_uri: str) -> bool:
    with psycopg.connect(database_uri, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return found is not None


@pytest.fixture(scope="module", params=["sqlite", "memory", "redis", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp(f"semantic-{request.param}")
    if request.param in ("sqlite", "memory"):
        if request.param == "sqlite" and not hasattr(sqlite3.Connection, "enable_load_extension"):
            _refused_at_start_up(base)
            pytest.skip(
                f"this Python ({sys.executable}) was built without loadable sqlite3 extensions, so the "
                "SQLite store cannot load sqlite-vec; graphrun's refusal of store.index at start-up was "
                "checked instead"
            )
        env = {"GRAPHRUN_STORE": "memory"} if request.param == "memory" else {}
        server = Server(config=CONFIG, data_dir=base / "data", log_dir=base / "logs", extra_env=env)
        try:
            server.start()
            yield server
        finally:
            server.stop()
        return
    if request.param == "postgres":
        _refused_without_pgvector(base)
    with production(base, CONFIG, _store_env(request.param), name="semantic") as deployment:
        yield deployment


def _store_env(kind: str) -> dict[str, str]:
    if kind == "postgres":
        return {}  # the production default
    stack = os.environ.get("GRAPHRUN_TEST_REDIS_STACK_URI")
    if not stack:
        pytest.fail("GRAPHRUN_TEST_REDIS_STACK_URI is not set: run the tests through scripts/test")
    return {"GRAPHRUN_STORE": "redis", "GRAPHRUN_STORE_URI": stack}


def _refused_without_pgvector(base: Path) -> None:
    """Where the PostgreSQL has no pgvector, check that graphrun refuses store.index at start-up (its
    ``migrate`` opens the store), then skip: semantic search itself cannot be verified there."""
    procs = Procs(log_dir=base / "refusal-logs", work_dir=base / "refusal-work")
    with fresh_database("semantic") as database_uri, claimed_redis_db() as redis_uri:
        if _has_pgvector(database_uri):
            return
        cluster = Cluster(procs, production_env(database_uri, redis_uri), config=CONFIG)
        try:
            with pytest.raises(
                RuntimeError, match=r"store\.index on PostgreSQL needs the pgvector extension"
            ):
                cluster.migrate()
        finally:
            procs.stop_all()
    pytest.skip(
        "this PostgreSQL has no pgvector extension (Debian 12 packages none, and its sources cannot be "
        "fetched here): semantic search on PostgreSQL is not verified on this machine; graphrun's refusal "
        "at start-up was checked instead"
    )


def _refused_at_start_up(base: Path) -> None:
    server = Server(config=CONFIG, data_dir=base / "data", log_dir=base / "logs", extra_env={})
    with pytest.raises(RuntimeError, match="exited with code"):
        server.start()
    server.stop()
    assert "store.index on SQLite needs sqlite-vec" in server.logs()


ITEMS = {
    "pets": "The cat sat while the dog slept",
    "trains": "The train was late, the car was faster",
    "weather": "Rain all day, then sun",
}


async def test_a_query_finds_items_by_meaning_with_scores(target: Any) -> None:
    namespace = ["notes", uuid.uuid4().hex]
    async with get_client(url=target.url, api_key=None) as client:
        for key, text in ITEMS.items():
            await client.store.put_item(namespace, key, {"text": text})
        await client.store.put_item(namespace, "unindexed", {"text": "cat cat cat"}, index=False)

        found = (await client.store.search_items(namespace, query="my cat", limit=3))["items"]

        assert found[0]["key"] == "pets"
        assert found[0]["value"] == {"text": ITEMS["pets"]}
        scores = [float(item["score"] or 0) for item in found if item["key"] in ITEMS]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] > scores[-1]
        trains = (await client.store.search_items(namespace, query="a fast train", limit=1))["items"]
        assert [i["key"] for i in trains] == ["trains"]
        # A filter still applies with a query; a search without one lists as before.
        filtered = await client.store.search_items(namespace, query="cat", filter={"text": ITEMS["weather"]})
        assert [i["key"] for i in filtered["items"]] == ["weather"]
        listed = (await client.store.search_items(namespace, limit=10))["items"]
        assert {i["key"] for i in listed} == {*ITEMS, "unindexed"}
