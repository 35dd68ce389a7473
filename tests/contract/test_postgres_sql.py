"""Every named PostgreSQL query compiles against the migrated schema, and migrations are safe to race."""

from __future__ import annotations

import asyncio
import re

import psycopg
import pytest

from graphrun import sql
from graphrun.stores.postgres import PostgresStore
from tests.conformance._servers import pg_schema

_PARAM = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("name", sorted(sql.queries("postgres")))
async def test_every_query_prepares_against_the_schema(name: str) -> None:
    text = sql.queries("postgres")[name]
    async with pg_schema() as conninfo:
        async with PostgresStore(conninfo, min_size=1, max_size=1):
            pass  # migrated
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            params = dict.fromkeys(_PARAM.findall(text))
            statement = (
                text if text.lstrip().upper().startswith(("CREATE", "SELECT PG_")) else f"EXPLAIN {text}"
            )
            await conn.execute(statement, params)  # parses, resolves tables, columns and types


async def test_stores_started_together_migrate_once() -> None:
    async with pg_schema() as conninfo:

        async def open_one() -> None:
            async with PostgresStore(conninfo, min_size=1, max_size=2):
                pass

        await asyncio.gather(*(open_one() for _ in range(4)))

        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            rows = await (
                await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            ).fetchall()
    assert [r[0] for r in rows] == [v for v, _, _ in sql.migrations("postgres")]
