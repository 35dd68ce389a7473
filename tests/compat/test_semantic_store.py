"""Semantic store search (``store.index`` in langgraph.json) through the SDK, with a deterministic local
embedding function, on each store that can hold vectors: SQLite with sqlite-vec and the in-memory store
(``graphrun dev``), Redis with the Search module and PostgreSQL with pgvector (``graphrun api`` +
``worker``).

PostgreSQL needs the pgvector extension. Where the test server has none (Debian 12 packages none), the
test first checks that graphrun refuses ``store.index`` there at start-up, then runs on a PostgreSQL 16
with pgvector 0.6 started from the ``pgserver`` wheel (a dev dependency on Linux x86_64); without that
wheel the case is skipped, saying so. SQLite needs a sqlite3 that loads extensions: where Python's
cannot, graphrun connects the store through pysqlite3 (a dependency on Linux x86_64).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sqlite3
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_client

from tests.harness.cluster import (
    TEST_DATABASE_URI,
    Cluster,
    Procs,
    claimed_redis_db,
    fresh_database,
    production_env,
)
from tests.harness.embedded import Server, embedded
from tests.harness.targets import production

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

CONFIG = Path(__file__).resolve().parent / "semantic.langgraph.json"


def _has_pgvector(database_uri: str) -> bool:
    with psycopg.connect(database_uri, autocommit=True, connect_timeout=5) as conn:
        found = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return found is not None


@pytest.fixture(scope="module", params=["sqlite", "memory", "redis", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp(f"semantic-{request.param}")
    if request.param in ("sqlite", "memory"):
        if request.param == "sqlite" and not _sqlite_loads_extensions():
            _refused_at_start_up(base)
            pytest.skip(
                f"this Python ({sys.executable}) was built without loadable sqlite3 extensions and "
                "pysqlite3 is not installed, so the SQLite store cannot load sqlite-vec; graphrun's "
                "refusal of store.index at start-up was checked instead"
            )
        env = {"GRAPHRUN_STORE": "memory"} if request.param == "memory" else {}
        with embedded(base, CONFIG, env) as server:
            yield server
        return
    if request.param == "postgres":
        with (
            _postgres_with_pgvector(base) as postgres_uri,
            production(base, CONFIG, {}, name="semantic", postgres_uri=postgres_uri) as deployment,
        ):
            yield deployment
        return
    with production(base, CONFIG, _redis_stack_env(), name="semantic") as deployment:
        yield deployment


def _sqlite_loads_extensions() -> bool:
    return (
        hasattr(sqlite3.Connection, "enable_load_extension")
        or importlib.util.find_spec("pysqlite3") is not None
    )


def _redis_stack_env() -> dict[str, str]:
    stack = os.environ.get("GRAPHRUN_TEST_REDIS_STACK_URI")
    if not stack:
        pytest.fail("GRAPHRUN_TEST_REDIS_STACK_URI is not set: run the tests through scripts/test")
    return {"GRAPHRUN_STORE": "redis", "GRAPHRUN_STORE_URI": stack}


@contextlib.contextmanager
def _postgres_with_pgvector(base: Path) -> Iterator[str]:
    """The URI of a PostgreSQL server with pgvector: the test server where it has the extension, else
    (after checking graphrun's refusal there) one started from the pgserver wheel for this module."""
    if _has_pgvector(TEST_DATABASE_URI):
        yield TEST_DATABASE_URI
        return
    _refused_without_pgvector(base)
    if importlib.util.find_spec("pgserver") is None:
        pytest.skip(
            f"the test PostgreSQL ({TEST_DATABASE_URI}) has no pgvector and the pgserver wheel (Linux "
            "x86_64 only) is not installed: semantic search on PostgreSQL is not verified here; "
            "graphrun's refusal at start-up was checked instead"
        )
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (pgserver keeps a lock file there).
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        # A short path: the server's Unix socket lives in it (sun_path holds 107 bytes).
        server = get_server(tempfile.mkdtemp(prefix="gr-pgv-"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _refused_without_pgvector(base: Path) -> None:
    """On a PostgreSQL without pgvector, graphrun refuses store.index at start-up (its ``migrate``
    opens the store) with a message that says what is missing."""
    procs = Procs(log_dir=base / "refusal-logs", work_dir=base / "refusal-work")
    with fresh_database("semantic") as database_uri, claimed_redis_db() as redis_uri:
        cluster = Cluster(procs, production_env(database_uri, redis_uri), config=CONFIG)
        try:
            with pytest.raises(
                RuntimeError, match=r"store\.index on PostgreSQL needs the pgvector extension"
            ):
                cluster.migrate()
        finally:
            procs.stop_all()


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


async def test_a_graph_node_searches_the_store_by_meaning(target: Any) -> None:
    namespace = ["notes", uuid.uuid4().hex]
    async with get_client(url=target.url, api_key=None) as client:
        for key, text in ITEMS.items():
            await client.store.put_item(namespace, key, {"text": text})

        for query, key in [("is it going to rain", "weather"), ("my dog", "pets")]:
            recall: dict[str, Any] = {"namespace": namespace, "query": query}
            state = await client.runs.wait(None, "recaller", input=recall, raise_error=True)
            assert isinstance(state, dict)
            assert state["found"] == [key]


async def test_an_item_can_name_its_own_fields_or_opt_out(target: Any) -> None:
    namespace = ["notes", uuid.uuid4().hex]
    async with get_client(url=target.url, api_key=None) as client:
        # Indexed by its title instead of langgraph.json's "text" field.
        await client.store.put_item(
            namespace, "titled", {"text": "nothing here", "title": "tea and code"}, index=["title"]
        )
        await client.store.put_item(namespace, "plain", {"text": "tea and code"}, index=False)
        await client.store.put_item(namespace, "trains", {"text": ITEMS["trains"]})

        found = (await client.store.search_items(namespace, query="tea", limit=3))["items"]

        assert found[0]["key"] == "titled"
        # An item kept out of the index has no vector: it is never ranked above an indexed match.
        assert "plain" not in [item["key"] for item in found[:2]]
