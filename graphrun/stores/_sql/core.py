"""What every noun of the SQL control store shares: the connection protocol, the capabilities an adapter
declares, how a call becomes a transaction, the store's clock, and the parameter helpers.

``SqlBase`` is the root of the noun classes (``assistants``, ``threads``, ``runs``, ``crons``,
``leases``); an adapter (``stores/sqlite.py``, ``stores/postgres.py``) supplies its dialect's named queries,
its ``Capabilities`` and how a transaction gets a connection (``_write``, ``_read``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from graphrun import encoding, sql
from graphrun.models import utcnow
from graphrun.stores import _rows
from graphrun.stores.base import Page

T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


class Db(Protocol):
    """A connection inside a transaction: rows read as mappings (``row["column"]``)."""

    def execute(self, query: str, params: Mapping[str, Any] = ..., /) -> Cursor: ...


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a database does that the shared logic adapts to, none by default. Each adapter declares its
    own; its dialect has the named queries a capability brings exactly when it declares it
    (``tests/unit/test_sql.py``)."""

    migration_lock: bool = False
    """Several processes may migrate at once, so migrations run under a lock (``lock_migrations``)."""
    row_locks: bool = False
    """Other processes write runs concurrently, so whoever decides a thread's status from its runs first
    holds the thread's row (``lock_thread``, ``FOR UPDATE``). SQLite's single writer is lock enough."""
    insert_run_marks_busy: bool = False
    """``insert_run`` also marks the thread busy (and wakes the workers) in the same statement; without
    it, ``mark_thread_busy`` follows each insert."""
    one_statement_new_thread_run: bool = False
    """A run on a thread its own request creates is one statement (``insert_run_on_new_thread``)."""
    one_statement_finish: bool = False
    """Finishing a run and setting its thread is one statement (``finish_run_and_thread``)."""


def clock() -> datetime:
    """The store's clock: every time the store writes comes from here (tests fake ``utcnow`` here)."""
    return utcnow()


def timestamp() -> str:
    """Now, as the fixed-width UTC text both dialects store."""
    return _rows.ts(clock())


def dump(value: Any) -> str | None:
    """JSON as text (Postgres casts it to ``jsonb``); None stays NULL."""
    return None if value is None else encoding.dumps_str(value)


def paging(page: Page, default_sort: str) -> dict[str, Any]:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "sort_by": page.sort_by or default_sort,
        "sort_order": page.sort_order if page.sort_order in ("asc", "desc") else "desc",
    }


class SqlBase:
    """Transactions of named queries; subclasses provide ``_write``, ``_read`` and ``_migrations``."""

    def __init__(self, queries: Mapping[str, str], capabilities: Capabilities) -> None:
        self._q = queries
        self._can = capabilities

    async def _write(self, fn: Callable[[Db], T]) -> T:
        """Run ``fn`` as one write transaction; rolled back whole if it raises."""
        raise NotImplementedError

    async def _read(self, fn: Callable[[Db], T]) -> T:
        """Run ``fn`` on a connection that sees committed data."""
        raise NotImplementedError

    # One statement, atomic by itself: the dialect may run it without a transaction around it, and
    # without the thread hop of ``_write``/``_read`` (PostgreSQL runs these on an async pool).

    async def _read_one(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._read(lambda db: self._one(query, params, db))

    async def _read_all(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._read(lambda db: self._all(query, params, db))

    async def _write_one(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._write(lambda db: self._one(query, params, db))

    async def _write_all(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._write(lambda db: self._all(query, params, db))

    def _migrate(self, db: Db) -> None:
        """Apply the dialect's migrations not applied yet (the caller holds a write transaction)."""
        if self._can.migration_lock:
            db.execute(self._q["lock_migrations"], {})
        db.execute(self._q["create_migrations_table"], {})
        done = {row["version"] for row in db.execute(self._q["applied_migrations"], {}).fetchall()}
        for version, name, script in self._migrations():
            if version not in done:
                for statement in sql.statements(script):
                    db.execute(statement, {})
                db.execute(
                    self._q["record_migration"], {"version": version, "name": name, "now": timestamp()}
                )

    def _migrations(self) -> list[tuple[int, str, str]]:
        raise NotImplementedError

    def _lock_thread(self, db: Db, thread_id: str) -> None:
        """With ``row_locks``, hold the thread's row for the rest of the transaction: whoever decides a
        thread's status from its runs must see the runs others add meanwhile."""
        if self._can.row_locks:
            db.execute(self._q["lock_thread"], {"thread_id": thread_id})

    def _locked_thread(self, db: Db, thread_id: str) -> Any:
        """The thread's row (None: no such thread), held as ``_lock_thread`` holds it, in one statement."""
        if self._can.row_locks:
            return self._one("lock_thread", {"thread_id": thread_id}, db)
        return self._one("get_thread", {"thread_id": thread_id}, db)

    def _one(self, query: str, params: Mapping[str, Any], db: Db) -> Any:
        return db.execute(self._q[query], params).fetchone()

    def _all(self, query: str, params: Mapping[str, Any], db: Db) -> Any:
        return db.execute(self._q[query], params).fetchall()
