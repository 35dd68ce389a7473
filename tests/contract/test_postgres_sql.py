"""Every named PostgreSQL query compiles against the migrated schema, and migrations are safe to race."""

from __future__ import annotations

import asyncio
import re

import psycopg
import pytest

from graphrun import sql
from graphrun.models import new_id, utcnow
from graphrun.stores import _rows
from graphrun.stores._sql import SqlStore
from graphrun.stores.postgres import PostgresStore
from tests.conformance._servers import pg_schema

from ._support import new_run, outcome, running_run

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


async def test_finish_sees_a_run_created_while_it_waited_for_the_thread() -> None:
    """Finishing a run waits for its thread's row (``graphrun_finish_run``, one statement). A run that
    the transaction holding the row creates meanwhile keeps the thread busy once both have committed."""
    async with pg_schema() as conninfo, PostgresStore(conninfo, min_size=1, max_size=4) as store:
        thread_id = new_id()
        run = await running_run(store, thread_id)
        async with await psycopg.AsyncConnection.connect(conninfo) as api:
            async with api.transaction():  # an API process creating a run on the thread, part-way
                await api.execute("SELECT 1 FROM threads WHERE thread_id = %s FOR UPDATE", (thread_id,))
                finishing = asyncio.create_task(store.finish_run(run, outcome()))
                await asyncio.sleep(0.3)
                assert not finishing.done(), "finish did not wait for the thread's row"
                params = SqlStore._run_params(new_run(thread_id), _rows.ts(utcnow()))
                await api.execute(sql.queries("postgres")["insert_run"], params)
            await finishing

        assert (await store.find_run(run.run_id)).status == "success"
        assert (await store.get_thread(thread_id)).status == "busy"
