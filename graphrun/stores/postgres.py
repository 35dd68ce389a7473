"""The PostgreSQL control store of production mode, and the LISTEN/NOTIFY wake-up of idle workers.

The logic is ``SqlStore``'s; this adapter runs each transaction on a connection from a
``psycopg_pool.ConnectionPool`` (psycopg's synchronous API) on a thread of its own executor, as the SQLite
adapter does with ``sqlite3``: one thread hop per call, one body of control-store logic for both
databases. A transaction that meets a deadlock (possible between a reaper and a worker finishing the
same run) is retried whole.

What is one statement (every call on a run's hot path: reading the assistant, creating a run on a new
thread, claiming, finishing, renewing a lease, reading a run or thread) skips the thread: it runs on a
``psycopg_pool.AsyncConnectionPool`` in the event loop. A thread hop cost about 250 µs of CPU per call
against 100 µs on the async pool (20,000 calls, 16 at a time, on the benchmark machine).

Round trips are what a short run spends most on here, so connections are in autocommit: a read is its
statements alone, without BEGIN and COMMIT (each statement sees committed data, as it would in a READ
COMMITTED transaction). psycopg's pipeline mode, which would send a write's statements together, cost
more CPU than the round trips it saved (``bench/production.py``: 100 against 109 runs/s), so it is not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar, cast

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from graphrun import errors, metrics, sql
from graphrun.settings import redacted
from graphrun.stores._sql import Capabilities, Db, SqlStore

log = structlog.get_logger("graphrun.stores.postgres")

T = TypeVar("T")
NEW_RUN_CHANNEL = "graphrun_new_run"
_RETRIES = 3
# Several processes write at once (row locks, a migration lock), and the hot path's writes are one
# statement each where a PL/pgSQL function or a CTE can make them so (see the module's docstring).
CAPABILITIES = Capabilities(
    migration_lock=True,
    row_locks=True,
    insert_run_marks_busy=True,
    one_statement_new_thread_run=True,
    one_statement_finish=True,
)
# Longest a transaction waits for a pooled connection: with the database down, answer 503 fast rather
# than hold the request for psycopg_pool's default 30 s.
connection_wait_s = 5.0
# Errors after which the whole transaction can simply run again.
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
# What "PostgreSQL does not answer" looks like (TimeoutError: the pool found no working connection in time).
_UNREACHABLE = (psycopg.OperationalError, psycopg.errors.AdminShutdown, TimeoutError)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.row_factory = dict_row
    conn.autocommit = True


async def _configure_async(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.row_factory = dict_row
    await conn.set_autocommit(True)


class PostgresStore(SqlStore):
    """``ControlStore`` on PostgreSQL. Use as ``async with PostgresStore(uri) as store``; entering it
    applies the migrations (under an advisory lock, so several processes may start at once)."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 2,
        max_size: int = 20,
        max_idle_s: float = 300.0,
        max_lifetime_s: float = 3600.0,
        migrate: bool = True,
        direct_conninfo: str = "",
        pooled: bool = False,
    ) -> None:
        """``pooled``: ``conninfo`` is a pooler in transaction mode (PgBouncer), whose server connections
        change between transactions: no server-side prepared statements on it, and the migrations run on
        ``direct_conninfo`` (PostgreSQL itself; empty: ``conninfo``)."""
        super().__init__(sql.queries("postgres"), CAPABILITIES)
        self.conninfo = conninfo
        self._direct_conninfo = direct_conninfo or conninfo
        self._migrate_on_open = migrate
        # Single statements (the hot path) on the async pool; transactions on the synchronous one, which
        # grows only while transactions overlap. With the checkpointer's, a process has three pools.
        sizing: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "max_idle": max_idle_s,
            "max_lifetime": max_lifetime_s,
            "timeout": connection_wait_s,
            "open": False,
            # psycopg prepares a statement run 5 times on its connection; through a pooler the next
            # transaction may get another server connection (DuplicatePreparedStatement, or none at all).
            "kwargs": {"prepare_threshold": None} if pooled else {},
        }
        self._apool = AsyncConnectionPool(
            conninfo, configure=_configure_async, name="graphrun-control", **sizing
        )
        self._pool = ConnectionPool(conninfo, configure=_configure, name="graphrun-control-tx", **sizing)
        metrics.watch_pool("control", self._apool)
        metrics.watch_pool("control-tx", self._pool)
        self._executor = ThreadPoolExecutor(max_workers=max_size, thread_name_prefix="graphrun-pg")

    async def __aenter__(self) -> PostgresStore:
        await self._run(lambda: self._pool.open(wait=True, timeout=10.0))
        try:
            await self._apool.open(wait=True, timeout=10.0)
        except BaseException:
            await self._run(self._pool.close)
            raise
        if self._migrate_on_open:
            await self.migrate()
        return self

    async def __aexit__(self, *exc: object | TracebackType | None) -> None:
        await self._apool.close()
        await self._run(self._pool.close)
        self._executor.shutdown(wait=True)

    async def migrate(self) -> None:
        if self._direct_conninfo == self.conninfo:
            await self._write(self._migrate)
        else:
            await self._run(self._migrate_direct)

    def _migrate_direct(self) -> None:
        try:
            with psycopg.connect(self._direct_conninfo, row_factory=dict_row) as conn, conn.transaction():
                self._migrate(cast(Db, conn))
        except _UNREACHABLE as exc:
            raise _unavailable(exc) from exc

    def _migrations(self) -> list[tuple[int, str, str]]:
        return sql.migrations("postgres")

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless a connection answers now (for ``/ready``)."""
        await self._statement("SELECT 1", {}, fetch_all=False)

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._executor, fn))

    def _transaction(self, fn: Callable[[Db], T]) -> T:
        """``fn`` in a transaction on a connection of the synchronous pool (on an executor thread)."""
        for attempt in range(1, _RETRIES + 1):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    return fn(cast(Db, conn))
            except _RETRYABLE as exc:
                if attempt == _RETRIES:
                    raise
                log.info("transaction_retried", error=type(exc).__name__, attempt=attempt)
            except _UNREACHABLE as exc:
                raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    async def _write(self, fn: Callable[[Db], T]) -> T:
        return await self._run(lambda: self._transaction(fn))

    async def _read_one(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._statement(self._q[query], params, fetch_all=False)

    async def _read_all(self, query: str, params: Mapping[str, Any]) -> Any:
        return await self._statement(self._q[query], params, fetch_all=True)

    async def _write_one(self, query: str, params: Mapping[str, Any]) -> Any:
        # A caller that is cancelled does not cut the write short (it may already be committed).
        return await asyncio.shield(self._statement(self._q[query], params, fetch_all=False))

    async def _write_all(self, query: str, params: Mapping[str, Any]) -> Any:
        return await asyncio.shield(self._statement(self._q[query], params, fetch_all=True))

    async def _statement(self, text: str, params: Mapping[str, Any], *, fetch_all: bool) -> Any:
        """One statement on the async pool, in autocommit; its rows (all, or the first)."""
        for attempt in range(1, _RETRIES + 1):
            try:
                async with self._apool.connection() as conn:
                    cursor = await conn.execute(cast(Any, text), params)
                    return await (cursor.fetchall() if fetch_all else cursor.fetchone())
            except _RETRYABLE as exc:
                if attempt == _RETRIES:
                    raise
                log.info("statement_retried", error=type(exc).__name__, attempt=attempt)
            except _UNREACHABLE as exc:
                raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    async def _read(self, fn: Callable[[Db], T]) -> T:
        # SqlStore reads through _read_one/_read_all (above); a read of several statements would come here.
        return await self._run(lambda: self._transaction(fn))


def _unavailable(exc: BaseException) -> errors.StoreUnavailable:
    return errors.StoreUnavailable(f"PostgreSQL is unreachable: {exc}")


class PgWakeup:
    """Idle workers wake when a run is created in any process: ``create_runs`` NOTIFYs in its
    transaction, this LISTENs. When the listening connection is lost, ``wait`` degrades to its timeout
    (polling) and the listener reconnects."""

    def __init__(self, conninfo: str, reconnect_s: float = 2.0) -> None:
        self._conninfo = conninfo
        self._reconnect_s = reconnect_s
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PgWakeup:
        self._task = asyncio.create_task(self._listen(), name="graphrun-pg-listen")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def notify_local(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return
        finally:
            self._event.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async for _ in self._notifications():
                    self._event.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("pg_listen_lost", error=str(exc))
            await asyncio.sleep(self._reconnect_s)

    async def _notifications(self) -> AsyncIterator[None]:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            await conn.execute(f"LISTEN {NEW_RUN_CHANNEL}")
            self._event.set()  # runs created while we were not listening: look once
            async for _ in conn.notifies():
                yield None


def wait_for_postgres(conninfo: str, timeout_s: float) -> None:
    """Block until PostgreSQL accepts a connection, or raise ``StoreUnavailable`` naming why."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=5):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise errors.StoreUnavailable(
                    f"PostgreSQL at {redacted(conninfo)} is unreachable: {exc}"
                ) from exc
            time.sleep(0.5)
