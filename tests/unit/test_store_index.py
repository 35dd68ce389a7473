"""``store.index`` read for the stores: ``embed`` as a file's or a module's object, or a provider
string handed to LangGraph as it is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import sqlite_vec  # type: ignore[import-untyped]

from graphrun.config import load_config
from graphrun.errors import ConfigError
from graphrun.graphs import load_store_index
from graphrun.savers import sqlite_store_connection, workarounds


def _config(tmp_path: Path, index: dict[str, object]) -> Path:
    (tmp_path / "agent.py").write_text("graph = None\n", encoding="utf-8")
    (tmp_path / "embed.py").write_text(
        "def embed(texts):\n    return [[1.0, 0.0] for _ in texts]\n\nnot_embeddings = 42\n", encoding="utf-8"
    )
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"agent": "./agent.py:graph"}, "store": {"index": index}}))
    return path


def test_a_file_embed_is_loaded(tmp_path: Path) -> None:
    index = load_store_index(load_config(_config(tmp_path, {"embed": "./embed.py:embed", "dims": 2})))

    assert index is not None
    assert index["dims"] == 2
    assert index["embed"](["a", "b"]) == [[1.0, 0.0], [1.0, 0.0]]
    assert "fields" not in index


def test_a_provider_string_is_passed_on(tmp_path: Path) -> None:
    raw = {"embed": "openai:text-embedding-3-small", "dims": 1536, "fields": ["text", "summary"]}

    index = load_store_index(load_config(_config(tmp_path, raw)))

    assert index == {"embed": "openai:text-embedding-3-small", "dims": 1536, "fields": ["text", "summary"]}


def test_a_module_object_is_loaded(tmp_path: Path) -> None:
    index = load_store_index(
        load_config(_config(tmp_path, {"embed": "tests.compat.embeddings:embed", "dims": 8}))
    )

    assert index is not None
    assert len(index["embed"](["the cat"])[0]) == 8


def test_something_that_does_not_embed_is_refused(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"embed": "./embed.py:not_embeddings", "dims": 2}))

    with pytest.raises(ConfigError, match="not an Embeddings object or an embedding function"):
        load_store_index(config)


def test_no_index_is_none(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    (tmp_path / "agent.py").write_text("graph = None\n", encoding="utf-8")
    path.write_text(json.dumps({"graphs": {"agent": "./agent.py:graph"}}))

    assert load_store_index(load_config(path)) is None


async def test_the_sqlite_store_connection_loads_sqlite_vec(tmp_path: Path) -> None:
    # Through the standard sqlite3 where it loads extensions, else through pysqlite3.
    async with sqlite_store_connection(str(tmp_path / "store.sqlite"), vectors=True) as conn:
        await conn.enable_load_extension(True)
        await conn.load_extension(sqlite_vec.loadable_path())
        async with conn.execute("SELECT vec_version()") as cursor:
            row = await cursor.fetchone()

    assert row is not None
    assert str(row[0]).startswith("v")


async def test_without_a_sqlite3_that_loads_extensions_the_store_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class NoExtensions:  # a Python built without loadable sqlite3 extensions
        class Connection:
            pass

    monkeypatch.setattr(workarounds, "sqlite3", NoExtensions)
    monkeypatch.setitem(sys.modules, "pysqlite3", None)  # and no pysqlite3: its import fails
    monkeypatch.setitem(sys.modules, "pysqlite3.dbapi2", None)

    with pytest.raises(ConfigError, match=r"store\.index on SQLite needs sqlite-vec.*pysqlite3-binary"):
        sqlite_store_connection(str(tmp_path / "store.sqlite"), vectors=True)
