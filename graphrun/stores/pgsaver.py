"""SQL on the tables of LangGraph's PostgreSQL saver and store (``langgraph-checkpoint-postgres``), not
ours: their setup serialised across processes, and a run's checkpoints deleted.

Both work around gaps of the official library (``graphrun/savers/workarounds.py``,
``graphrun/checkpointer.py``); the queries are in ``graphrun/sql/postgres/saver.sql``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from graphrun import sql

SAVER_Q = sql.queries("postgres", "saver")
# How often a process waiting for another's setup of the savers' tables tries the lock again (s).
setup_lock_retry_s = 0.1
Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


async def serialised_setup(
    pool: Pool | AsyncConnection[DictRow],
    setup: Callable[[AsyncConnection[DictRow]], Awaitable[None]],
) -> None:
    """Run ``setup`` on one connection (pooled, or the one given) that holds the savers' advisory lock
    meanwhile, so processes starting at once set up one after another (the official ``setup()`` is not
    safe concurrently: ``tests/integration/test_savers.py`` shows it)."""
    async with _connection(pool) as conn:
        await _lock(conn)
        try:
            await setup(conn)
        finally:
            await conn.execute(SAVER_Q["saver_setup_unlock"])


async def delete_saver_runs(
    conn: Pool | AsyncConnection[DictRow], thread_id: str, run_ids: Sequence[str]
) -> None:
    """Delete the checkpoints (in every namespace) the given runs wrote on a thread, and their writes,
    in one transaction, on the saver's pool or connection (the caller holds the saver's lock). Blobs
    stay: the saver shares them between checkpoints, and deleting the thread removes them."""
    params = {"thread_id": thread_id, "run_ids": list(run_ids)}
    async with _connection(conn) as db, db.transaction():
        await db.execute(SAVER_Q["saver_delete_run_writes"], params)
        await db.execute(SAVER_Q["saver_delete_run_checkpoints"], params)


@contextlib.asynccontextmanager
async def _connection(conn: Pool | AsyncConnection[DictRow]) -> AsyncIterator[AsyncConnection[DictRow]]:
    if isinstance(conn, AsyncConnection):
        yield conn
    else:
        async with conn.connection() as pooled:
            yield pooled


async def _lock(conn: AsyncConnection[DictRow]) -> None:
    """Take the savers' setup lock, trying again until the process holding it is done."""
    while True:
        row = await (await conn.execute(SAVER_Q["saver_setup_try_lock"])).fetchone()
        if row and row["locked"]:
            return
        await asyncio.sleep(setup_lock_retry_s)
