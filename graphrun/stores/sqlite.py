"""The SQLite control store of embedded mode.

The logic is ``SqlStore``'s; this adapter runs its transactions on SQLite with the standard library's
``sqlite3``. Writes go through a single writer thread and connection (``BEGIN IMMEDIATE``), reads through a
reader connection on another thread: in WAL mode it sees only committed data and never waits for the
writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import aiosqlite

from graphrun import sql
from graphrun.stores import _json
from graphrun.stores._sql import Capabilities, Db, SqlStore

SAVER_Q = sql.queries("sqlite", "saver")
# None: one writer connection serializes every write (no row locks needed, no other process migrating
# meanwhile), and a write transaction costs no round trips worth saving with one-statement forms.
CAPABILITIES = Capabilities()
_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000")
T = TypeVar("T")


class _Connection:
    """A sqlite3 connection that lives on, and is only touched from, one thread of its own."""

    def __init__(self, path: Path, name: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"graphrun-sqlite-{name}")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._conn = await self.run(self._connect)

    def _connect(self, _: sqlite3.Connection | None) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        conn.create_function("json_contains", 2, _json.sql_contains, deterministic=True)
        return conn

    async def run(self, fn: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._executor, fn, self._conn))

    async def close(self) -> None:
        if self._conn is not None:
            await self.run(lambda db: db.close())
            self._conn = None
        self._executor.shutdown(wait=True)


class SqliteStore(SqlStore):
    """``ControlStore`` on a SQLite file. Use as ``async with SqliteStore(path) as store``."""

    def __init__(self, path: Path) -> None:
        super().__init__(sql.queries("sqlite"), CAPABILITIES)
        self.path = path
        self._writer = _Connection(path, "writer")
        self._reader = _Connection(path, "reader")

    async def __aenter__(self) -> SqliteStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.open()
        await self._write(self._migrate)
        await self._reader.open()
        return self

    async def __aexit__(self, *exc: object | TracebackType | None) -> None:
        await self._reader.close()
        await self._writer.close()

    def _migrations(self) -> list[tuple[int, str, str]]:
        return sql.migrations("sqlite")

    async def _write(self, fn: Callable[[Db], T]) -> T:
        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(cast(Db, db))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self._writer.run(transaction)

    async def _read(self, fn: Callable[[Db], T]) -> T:
        return await self._reader.run(lambda db: fn(cast(Db, db)))


async def delete_saver_runs(conn: aiosqlite.Connection, thread_id: str, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints (and their writes) that the given runs wrote on a thread, in the tables of
    LangGraph's SQLite saver, on the saver's own connection (the caller holds the saver's lock), in one
    transaction (the first delete opens it, implicitly)."""
    try:
        for run_id in run_ids:
            async with conn.execute(
                SAVER_Q["saver_run_checkpoints"], {"thread_id": thread_id, "run_id": run_id}
            ) as cur:
                found = list(await cur.fetchall())
            for checkpoint_ns, checkpoint_id in found:
                key = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}
                await conn.execute(SAVER_Q["saver_delete_writes"], key)
                await conn.execute(SAVER_Q["saver_delete_checkpoint"], key)
    except BaseException:
        await conn.rollback()
        raise
    await conn.commit()


async def prune_saver_thread(conn: aiosqlite.Connection, thread_id: str) -> None:
    """Keep only the latest checkpoint (and its pending writes) of each namespace of a thread, in the
    tables of LangGraph's SQLite saver, which has no ``aprune``; on the saver's own connection (the
    caller holds the saver's lock), in one transaction."""
    try:
        for name in ("saver_prune_writes", "saver_prune_checkpoints", "saver_prune_parents"):
            await conn.execute(SAVER_Q[name], {"thread_id": thread_id})
    except BaseException:
        await conn.rollback()
        raise
    await conn.commit()
