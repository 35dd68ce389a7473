"""``graphrun.sql``: named queries, numbered migrations, and the schema the migrations produce.

The schema test applies the SQLite migrations with the stdlib driver, exactly as the store splits them, and
then prepares every named query against the result: a column a query uses but no migration creates fails here.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

import graphrun.stores._sql
import graphrun.stores.postgres
import graphrun.stores.sqlite
from graphrun import sql
from graphrun.stores._json import sql_contains
from graphrun.stores._sql import Capabilities

_PARAM = re.compile(r":(\w+)")
_STORE_REFERENCE = re.compile(r"""(?:Q\[|_q\[|_one\(|_all\(|_read_one\(|_read_all\()\s*["'](\w+)["']""")
DIALECTS = ["sqlite", "postgres"]

EXPECTED_COLUMNS = {
    "assistants": {
        "assistant_id", "graph_id", "config", "context", "metadata", "name", "description", "version",
        "created_at", "updated_at",
    },
    "assistant_versions": {
        "assistant_id", "version", "graph_id", "config", "context", "metadata", "name", "description",
        "created_at",
    },
    "threads": {
        "thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status", "state_values",
        "interrupts", "config", "error", "ttl_minutes", "ttl_strategy", "priority", "fairness_group",
    },
    "runs": {
        "run_id", "thread_id", "assistant_id", "graph_id", "status", "metadata", "multitask_strategy",
        "request", "created_at", "updated_at", "available_at", "attempt", "lease_owner", "lease_expires_at",
        "cancel_action", "output", "error", "usage", "priority", "cancel_reason",
    },
    "crons": {
        "cron_id", "assistant_id", "thread_id", "user_id", "schedule", "timezone", "end_time", "enabled",
        "on_run_completed", "next_run_date", "payload", "metadata", "template", "created_at", "updated_at",
    },
}  # fmt: skip


@pytest.fixture
def migrated() -> Iterator[sqlite3.Connection]:
    """A fresh in-memory database with every SQLite migration applied (and, as the store's connections
    have, the json_contains function the queries use)."""
    conn = sqlite3.connect(":memory:")
    conn.create_function("json_contains", 2, sql_contains, deterministic=True)
    try:
        conn.execute(sql.queries("sqlite")["create_migrations_table"])
        for _version, _name, script in sql.migrations("sqlite"):
            for statement in sql.statements(script):
                conn.execute(statement)
        yield conn
    finally:
        conn.close()


def test_queries_are_named_and_non_empty() -> None:
    queries = sql.queries("sqlite")

    assert queries
    for name, text in queries.items():
        assert re.fullmatch(r"[a-z_]+", name), name
        assert text.strip(), name
        assert "-- name:" not in text, name


CAPABILITIES = {
    "sqlite": graphrun.stores.sqlite.CAPABILITIES,
    "postgres": graphrun.stores.postgres.CAPABILITIES,
}
# The queries a capability brings (declared), or that stand in for it (not declared).
CAPABILITY_QUERIES: dict[str, tuple[set[str], set[str]]] = {
    "migration_lock": ({"lock_migrations"}, set()),
    "row_locks": ({"lock_thread"}, set()),
    "insert_run_marks_busy": (set(), {"mark_thread_busy"}),
    "one_statement_new_thread_run": ({"insert_run_on_new_thread"}, set()),
    "one_statement_finish": ({"finish_run_and_thread"}, set()),
}


def _store_source() -> str:
    """The control-store logic, written once (``stores/_sql/``, one module per noun)."""
    folder = Path(graphrun.stores._sql.__file__).parent
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py")))


def test_every_capability_names_its_queries() -> None:
    assert set(CAPABILITY_QUERIES) == {f.name for f in dataclasses.fields(Capabilities)}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_dialect_has_a_capabilitys_queries_exactly_when_its_adapter_declares_it(dialect: str) -> None:
    """The store tells the dialects apart by the adapters' ``Capabilities``, never by looking for a
    query: a capability declared without its query would fail at run time, one left undeclared would
    leave its query unused."""
    queries = set(sql.queries(dialect))
    for name, (brought, replaced) in CAPABILITY_QUERIES.items():
        declared = getattr(CAPABILITIES[dialect], name)
        present, absent = (brought, replaced) if declared else (replaced, brought)
        assert present <= queries, (dialect, name)
        assert not absent & queries, (dialect, name)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_the_store_uses_exists(dialect: str) -> None:
    """Each dialect has every query the store names, but those of the capabilities its adapter lacks."""
    used = set(_STORE_REFERENCE.findall(_store_source()))
    missing: set[str] = set()
    for name, (brought, replaced) in CAPABILITY_QUERIES.items():
        missing |= replaced if getattr(CAPABILITIES[dialect], name) else brought

    assert used, "the pattern no longer finds the store's query references"
    assert used - missing - set(sql.queries(dialect)) == set()


def test_the_sqlite_adapter_uses_only_saver_queries_of_its_own() -> None:
    source = Path(graphrun.stores.sqlite.__file__).read_text(encoding="utf-8")
    used = set(_STORE_REFERENCE.findall(source))

    assert used - set(sql.queries("sqlite", "saver")) == set()


def test_migrations_are_numbered_in_order() -> None:
    found = sql.migrations("sqlite")

    assert [version for version, _, _ in found] == list(range(1, len(found) + 1))
    for version, name, script in found:
        assert re.fullmatch(rf"{version:04d}_[a-z0-9_]+\.sql", name), name
        assert sql.statements(script), name


def test_migrations_produce_the_schema(migrated: sqlite3.Connection) -> None:
    tables = {row[0] for row in migrated.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    assert tables == {*EXPECTED_COLUMNS, "schema_migrations"}
    for table, columns in EXPECTED_COLUMNS.items():
        found = {row[1] for row in migrated.execute(f"PRAGMA table_info({table})")}
        assert found == columns, table


@pytest.mark.parametrize("name", sorted(sql.queries("sqlite")))
def test_every_query_prepares_against_the_schema(migrated: sqlite3.Connection, name: str) -> None:
    text = sql.queries("sqlite")[name]
    params = dict.fromkeys(_PARAM.findall(text))

    # EXPLAIN compiles the statement (tables, columns, functions) without running it.
    migrated.execute(f"EXPLAIN {text}", params)


@pytest.mark.parametrize("name", sorted(sql.queries("sqlite", "saver")))
async def test_every_saver_query_prepares_against_the_saver_schema(tmp_path: Path, name: str) -> None:
    """The saver's tables are LangGraph's: prepared against the schema its own ``setup`` creates."""
    text = sql.queries("sqlite", "saver")[name]
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        await saver.setup()
        await saver.conn.execute(f"EXPLAIN {text}", dict.fromkeys(_PARAM.findall(text)))


def test_query_parameters_are_named_not_positional() -> None:
    for name, text in {**sql.queries("sqlite"), **sql.queries("sqlite", "saver")}.items():
        assert "?" not in text, name
        assert "%s" not in text, name


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("CREATE TABLE a (x INT);\n", ["CREATE TABLE a (x INT)"], id="one"),
        pytest.param("CREATE TABLE a (x INT)", ["CREATE TABLE a (x INT)"], id="no-final-semicolon"),
        pytest.param(
            "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);",
            ["CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"],
            id="two",
        ),
        pytest.param(
            "-- drop a; then b;\nCREATE TABLE a (x INT);\n",
            ["CREATE TABLE a (x INT)"],
            id="semicolon-in-comment-line",
        ),
        pytest.param(
            "CREATE TABLE a (\n    x INT,\n    -- y; is gone\n    z INT\n);\n",
            ["CREATE TABLE a (\n    x INT,\n    z INT\n)"],
            id="indented-comment-inside-statement",
        ),
        pytest.param(
            "INSERT INTO a VALUES ('x;y');\n", ["INSERT INTO a VALUES ('x;y')"], id="semicolon-mid-line"
        ),
        pytest.param(
            "CREATE TABLE a (x INT);\r\nCREATE TABLE b (y INT);\r\n",
            ["CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"],
            id="crlf",
        ),
        pytest.param(
            "\n\nCREATE TABLE a (x INT);\n\n\nCREATE INDEX a_x ON a (x);\n\n",
            ["CREATE TABLE a (x INT)", "CREATE INDEX a_x ON a (x)"],
            id="blank-lines",
        ),
        pytest.param(
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN 1;\n"
            "END $$;\nCREATE TABLE a (x INT);\n",
            [
                "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN 1;\n"
                "END $$",
                "CREATE TABLE a (x INT)",
            ],
            id="function-body",
        ),
    ],
)
def test_statements(script: str, expected: list[str]) -> None:
    assert sql.statements(script) == expected
