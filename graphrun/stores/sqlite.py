"""The SQLite control store of embedded mode.

One writer connection, used under an ``asyncio.Lock`` with ``BEGIN IMMEDIATE`` so that each method is one
transaction, and one reader connection: in WAL mode the reader sees only committed data and never waits
for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from graphrun import encoding, errors, sql
from graphrun.models import Assistant, Run, RunOutcome, Thread, utcnow
from graphrun.stores import _rows
from graphrun.stores.base import CreatedRun, NewRun, Page
from graphrun.types import CancelAction, Json, ThreadStatus

Q = sql.queries("sqlite")
_ASSISTANT_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")


def _now() -> str:
    return _rows.ts(utcnow())


def _dump(value: Any) -> str | None:
    return None if value is None else encoding.dumps_str(value)


class SqliteStore:
    """``ControlStore`` on a SQLite file. Use as ``async with SqliteStore(path) as store``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SqliteStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        self._reader = await self._connect()
        await self._migrate()
        return self

    async def __aexit__(self, *exc: object | TracebackType | None) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def _migrate(self) -> None:
        async with self._tx() as db:
            await db.execute(Q["create_migrations_table"])
            done = {row["version"] for row in await db.execute_fetchall(Q["applied_migrations"])}
            for version, name, script in sql.migrations("sqlite"):
                if version not in done:
                    for statement in sql.statements(script):
                        await db.execute(statement)
                    await db.execute(Q["record_migration"], {"version": version, "name": name, "now": _now()})

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; rolled back whole if the body raises."""
        assert self._writer is not None, "store is not open"
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def _one(
        self, query: str, params: Mapping[str, Any], db: aiosqlite.Connection | None = None
    ) -> Any:
        conn = db or self._reader
        assert conn is not None, "store is not open"
        async with conn.execute(Q[query], params) as cur:
            return await cur.fetchone()

    async def _all(
        self, query: str, params: Mapping[str, Any], db: aiosqlite.Connection | None = None
    ) -> Any:
        conn = db or self._reader
        assert conn is not None, "store is not open"
        return await conn.execute_fetchall(Q[query], params)

    # ------------------------------------------------------------------ assistants

    async def ensure_system_assistant(
        self, assistant_id: str, graph_id: str, description: str | None
    ) -> None:
        async with self._tx() as db:
            if await self._one("get_assistant", {"assistant_id": assistant_id}, db) is None:
                await self._insert_assistant(
                    db, assistant_id, graph_id, {}, {}, {"created_by": "system"}, graph_id, description
                )

    async def _insert_assistant(
        self,
        db: aiosqlite.Connection,
        assistant_id: str,
        graph_id: str,
        config: Json,
        context: Json,
        metadata: Json,
        name: str,
        description: str | None,
    ) -> None:
        params = {
            "assistant_id": assistant_id,
            "graph_id": graph_id,
            "config": _dump(config),
            "context": _dump(context),
            "metadata": _dump(metadata),
            "name": name,
            "description": description,
            "now": _now(),
        }
        await db.execute(Q["insert_assistant"], params)
        await db.execute(Q["insert_assistant_version"], {**params, "version": 1})

    async def create_assistant(self, assistant: Assistant, if_exists: str) -> Assistant:
        async with self._tx() as db:
            existing = await self._one("get_assistant", {"assistant_id": assistant.assistant_id}, db)
            if existing is not None:
                if if_exists == "do_nothing":
                    return _rows.assistant(existing)
                raise errors.AlreadyExists(f"Assistant {assistant.assistant_id} already exists")
            a = assistant
            await self._insert_assistant(
                db, a.assistant_id, a.graph_id, a.config, a.context, a.metadata, a.name, a.description
            )
            return _rows.assistant(await self._one("get_assistant", {"assistant_id": a.assistant_id}, db))

    async def get_assistant(self, assistant_id: str) -> Assistant:
        row = await self._one("get_assistant", {"assistant_id": assistant_id})
        if row is None:
            raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")
        return _rows.assistant(row)

    async def update_assistant(self, assistant_id: str, changes: Json) -> Assistant:
        """A new version from the current one with ``changes`` applied; it becomes the current version."""
        async with self._tx() as db:
            row = await self._one("get_assistant", {"assistant_id": assistant_id}, db)
            if row is None:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")
            current = _rows.assistant(row)
            fields: dict[str, Any] = {k: getattr(current, k) for k in _ASSISTANT_FIELDS}
            fields.update({k: v for k, v in changes.items() if k in _ASSISTANT_FIELDS and v is not None})
            fields["metadata"] = {
                **current.metadata,
                **changes.get("metadata", {}),
            }  # merged, as the SDK says
            version = (await self._one("max_assistant_version", {"assistant_id": assistant_id}, db))[
                "version"
            ] + 1
            params = {
                **fields,
                "config": _dump(fields["config"]),
                "context": _dump(fields["context"]),
                "metadata": _dump(fields["metadata"]),
                "assistant_id": assistant_id,
                "version": version,
                "now": _now(),
            }
            await db.execute(Q["insert_assistant_version"], params)
            await db.execute(Q["set_assistant_current"], params)
            return _rows.assistant(await self._one("get_assistant", {"assistant_id": assistant_id}, db))

    async def delete_assistant(self, assistant_id: str) -> None:
        async with self._tx() as db:
            cur = await db.execute(Q["delete_assistant"], {"assistant_id": assistant_id})
            if cur.rowcount == 0:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")

    async def search_assistants(
        self, graph_id: str | None, metadata: Json, name: str | None, page: Page
    ) -> list[Assistant]:
        params = {
            "graph_id": graph_id,
            "metadata": _dump(metadata),
            "name": name,
            **_page(page, "created_at"),
        }
        return [_rows.assistant(r) for r in await self._all("search_assistants", params)]

    async def count_assistants(self, graph_id: str | None, metadata: Json, name: str | None) -> int:
        params = {"graph_id": graph_id, "metadata": _dump(metadata), "name": name}
        return int((await self._one("count_assistants", params))["n"])

    async def list_assistant_versions(self, assistant_id: str, metadata: Json, page: Page) -> list[Assistant]:
        await self.get_assistant(assistant_id)
        params = {"assistant_id": assistant_id, "metadata": _dump(metadata), "limit": page.limit}
        params["offset"] = page.offset
        return [_rows.assistant(r) for r in await self._all("list_assistant_versions", params)]

    async def set_assistant_latest(self, assistant_id: str, version: int) -> Assistant:
        async with self._tx() as db:
            row = await self._one(
                "get_assistant_version", {"assistant_id": assistant_id, "version": version}, db
            )
            if row is None:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} has no version {version}")
            params = {k: row[k] for k in (*_ASSISTANT_FIELDS, "assistant_id", "version")}
            await db.execute(Q["set_assistant_current"], {**params, "now": _now()})
            return _rows.assistant(await self._one("get_assistant", {"assistant_id": assistant_id}, db))

    # ------------------------------------------------------------------ threads

    async def create_thread(self, thread_id: str, metadata: Json, if_exists: str) -> Thread:
        async with self._tx() as db:
            existing = await self._one("get_thread", {"thread_id": thread_id}, db)
            if existing is not None:
                if if_exists == "do_nothing":
                    return _rows.thread(existing)
                raise errors.AlreadyExists(f"Thread {thread_id} already exists")
            await self._insert_thread(db, thread_id, metadata)
            return _rows.thread(await self._one("get_thread", {"thread_id": thread_id}, db))

    async def _insert_thread(
        self, db: aiosqlite.Connection, thread_id: str, metadata: Json, values: Json | None = None
    ) -> None:
        params = {
            "thread_id": thread_id,
            "metadata": _dump(metadata),
            "values": _dump(values),
            "config": "{}",
            "now": _now(),
        }
        await db.execute(Q["insert_thread"], params)

    async def get_thread(self, thread_id: str) -> Thread:
        row = await self._one("get_thread", {"thread_id": thread_id})
        if row is None:
            raise errors.ThreadNotFound(f"Thread {thread_id} not found")
        return _rows.thread(row)

    async def update_thread(self, thread_id: str, metadata: Json) -> Thread:
        """Merge ``metadata`` into the thread's: top-level keys replaced whole, as Postgres' ``||``."""
        async with self._tx() as db:
            row = await self._one("get_thread", {"thread_id": thread_id}, db)
            if row is None:
                raise errors.ThreadNotFound(f"Thread {thread_id} not found")
            merged = {**_rows.thread(row).metadata, **metadata}
            params = {"thread_id": thread_id, "metadata": _dump(merged), "now": _now()}
            await db.execute(Q["set_thread_metadata"], params)
            return _rows.thread(await self._one("get_thread", {"thread_id": thread_id}, db))

    async def delete_thread(self, thread_id: str) -> list[Run]:
        """Delete the thread and its runs; return the runs that were in flight (the caller cancels them)."""
        async with self._tx() as db:
            inflight = [_rows.run(r) for r in await self._all("inflight_runs", {"thread_id": thread_id}, db)]
            cur = await db.execute(Q["delete_thread"], {"thread_id": thread_id})
            if cur.rowcount == 0:
                raise errors.ThreadNotFound(f"Thread {thread_id} not found")
            return inflight

    async def search_threads(
        self,
        metadata: Json,
        values: Json,
        status: ThreadStatus | None,
        ids: Sequence[str] | None,
        page: Page,
    ) -> list[Thread]:
        params = {
            "metadata": _dump(metadata),
            "values": _dump(values),
            "status": status,
            "ids": _dump(list(ids)) if ids is not None else None,
            **_page(page, "created_at"),
        }
        return [_rows.thread(r) for r in await self._all("search_threads", params)]

    async def count_threads(self, metadata: Json, values: Json, status: ThreadStatus | None) -> int:
        params = {"metadata": _dump(metadata), "values": _dump(values), "status": status}
        return int((await self._one("count_threads", params))["n"])

    async def set_thread_state(
        self, thread_id: str, values: Json | None, interrupts: dict[str, list[Json]], status: ThreadStatus
    ) -> None:
        async with self._tx() as db:
            params = {
                "thread_id": thread_id,
                "values": _dump(values),
                "interrupts": _dump(interrupts),
                "status": status,
                "now": _now(),
            }
            cur = await db.execute(Q["set_thread_state"], params)
            if cur.rowcount == 0:
                raise errors.ThreadNotFound(f"Thread {thread_id} not found")

    async def copy_thread(self, source_id: str, target_id: str) -> Thread:
        async with self._tx() as db:
            row = await self._one("get_thread", {"thread_id": source_id}, db)
            if row is None:
                raise errors.ThreadNotFound(f"Thread {source_id} not found")
            source = _rows.thread(row)
            await self._insert_thread(db, target_id, source.metadata, source.values)
            await db.execute(
                Q["set_thread_state"],
                {
                    "thread_id": target_id,
                    "values": _dump(source.values),
                    "interrupts": _dump(source.interrupts),
                    "status": "idle" if source.status == "busy" else source.status,
                    "now": _now(),
                },
            )
            return _rows.thread(await self._one("get_thread", {"thread_id": target_id}, db))

    # ------------------------------------------------------------------ runs

    async def create_run(self, new: NewRun) -> CreatedRun:
        """Insert the run in one transaction with its thread checks, busy check and strategy."""
        async with self._tx() as db:
            now = _now()
            if await self._one("get_thread", {"thread_id": new.thread_id}, db) is None:
                if new.if_not_exists != "create":
                    raise errors.ThreadNotFound(f"Thread {new.thread_id} not found")
                await self._insert_thread(db, new.thread_id, {})
            inflight = [
                _rows.run(r) for r in await self._all("inflight_runs", {"thread_id": new.thread_id}, db)
            ]
            cancelled: list[Run] = []
            if inflight and new.multitask_strategy == "reject":
                raise errors.ThreadBusy(
                    f"Thread {new.thread_id} is busy with run {inflight[0].run_id}; "
                    "multitask_strategy='reject' refuses a second run"
                )
            if inflight and new.multitask_strategy in ("interrupt", "rollback"):
                cancelled = await self._cancel_all(db, inflight, new.multitask_strategy, now)
            await db.execute(
                Q["insert_run"],
                {
                    "run_id": new.run_id,
                    "thread_id": new.thread_id,
                    "assistant_id": new.assistant_id,
                    "graph_id": new.graph_id,
                    "metadata": _dump(new.metadata),
                    "multitask_strategy": new.multitask_strategy,
                    "request": _rows.request_json(new.request),
                    "available_at": _rows.ts(new.available_at),
                    "now": now,
                },
            )
            stamp = {"graph_id": new.graph_id, "assistant_id": new.assistant_id}
            await db.execute(
                Q["mark_thread_busy"], {"thread_id": new.thread_id, "metadata": _dump(stamp), "now": now}
            )
            run = _rows.run(await self._one("get_run_by_id", {"run_id": new.run_id}, db))
            return CreatedRun(run=run, cancelled=cancelled)

    async def _cancel_all(
        self, db: aiosqlite.Connection, runs: Sequence[Run], action: str, now: str
    ) -> list[Run]:
        for r in runs:
            await db.execute(Q["cancel_pending_run"], {"run_id": r.run_id, "action": action, "now": now})
            await db.execute(Q["request_cancel_running"], {"run_id": r.run_id, "action": action, "now": now})
        return [r for r in runs if r.status == "running"]

    async def get_run(self, thread_id: str, run_id: str) -> Run:
        row = await self._one("get_run", {"thread_id": thread_id, "run_id": run_id})
        if row is None:
            raise errors.RunNotFound(f"Run {run_id} not found on thread {thread_id}")
        return _rows.run(row)

    async def find_run(self, run_id: str) -> Run:
        row = await self._one("get_run_by_id", {"run_id": run_id})
        if row is None:
            raise errors.RunNotFound(f"Run {run_id} not found")
        return _rows.run(row)

    async def list_runs(self, thread_id: str, status: str | None, page: Page) -> list[Run]:
        if await self._one("get_thread", {"thread_id": thread_id}) is None:
            raise errors.ThreadNotFound(f"Thread {thread_id} not found")
        params = {"thread_id": thread_id, "status": status, "limit": page.limit, "offset": page.offset}
        return [_rows.run(r) for r in await self._all("list_runs", params)]

    async def delete_run(self, thread_id: str, run_id: str) -> None:
        async with self._tx() as db:
            row = await self._one("get_run", {"thread_id": thread_id, "run_id": run_id}, db)
            if row is None:
                raise errors.RunNotFound(f"Run {run_id} not found on thread {thread_id}")
            if row["status"] in ("pending", "running"):
                raise errors.Conflict(f"Run {run_id} is {row['status']}; cancel it before deleting it")
            await db.execute(Q["delete_run"], {"thread_id": thread_id, "run_id": run_id})

    async def cancel_run(self, thread_id: str, run_id: str, action: CancelAction) -> Run:
        """Pending runs end ``interrupted`` at once; running ones are flagged for their worker."""
        async with self._tx() as db:
            row = await self._one("get_run", {"thread_id": thread_id, "run_id": run_id}, db)
            if row is None:
                raise errors.RunNotFound(f"Run {run_id} not found on thread {thread_id}")
            run = _rows.run(row)
            now = _now()
            await self._cancel_all(db, [run], action, now)
            await db.execute(Q["settle_thread_status"], {"thread_id": thread_id, "now": now})
            return _rows.run(await self._one("get_run_by_id", {"run_id": run_id}, db))

    # ------------------------------------------------------------------ the worker's side

    async def claim_runs(self, worker_id: str, limit: int, lease_s: float) -> list[Run]:
        async with self._tx() as db:
            now = utcnow()
            params = {
                "worker_id": worker_id,
                "limit": limit,
                "now": _rows.ts(now),
                "lease_expires_at": _rows.ts(now + timedelta(seconds=lease_s)),
            }
            return [_rows.run(r) for r in await self._all("claim_runs", params, db)]

    async def renew_lease(self, run: Run, worker_id: str, lease_s: float) -> str | None:
        """Extend the lease; return the cancel action asked for, if any. Raise ``LeaseLost`` if not ours."""
        async with self._tx() as db:
            params = {
                "run_id": run.run_id,
                "attempt": run.attempt,
                "worker_id": worker_id,
                "lease_expires_at": _rows.ts(utcnow() + timedelta(seconds=lease_s)),
            }
            row = await self._one("renew_lease", params, db)
            if row is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
            action: str | None = row["cancel_action"]
            return action

    async def finish_run(self, run: Run, outcome: RunOutcome) -> None:
        async with self._tx() as db:
            now = _now()
            params = {
                "run_id": run.run_id,
                "attempt": run.attempt,
                "status": outcome.status,
                "output": _dump(outcome.output),
                "error": _dump(outcome.error),
                "now": now,
            }
            if await self._one("finish_run", params, db) is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
            thread_params = {
                "thread_id": run.thread_id,
                "status": outcome.thread_status,
                "values": _dump(outcome.thread_values),
                "interrupts": _dump(outcome.interrupts),
                "error": _dump(outcome.error),
                "now": now,
            }
            await db.execute(Q["set_thread_after_run"], thread_params)

    async def release_run(self, run: Run) -> None:
        """Give a claimed run back (shutdown): it is claimed again, its progress kept in checkpoints."""
        async with self._tx() as db:
            params = {"run_id": run.run_id, "attempt": run.attempt, "now": _now()}
            if await self._one("release_run", params, db) is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")

    async def reap_expired(self, max_attempts: int, *, all_running: bool = False) -> list[Run]:
        """Return runs whose lease expired to ``pending``, or end them in error after ``max_attempts``.

        ``all_running`` treats every running run as expired: embedded mode calls it at start-up, when
        the data-dir lock proves that no other process can be executing them.
        """
        async with self._tx() as db:
            now = _now()
            query = "all_running_runs" if all_running else "expired_runs"
            expired = [_rows.run(r) for r in await self._all(query, {"now": now}, db)]
            for r in expired:
                params = {"run_id": r.run_id, "attempt": r.attempt, "now": now}
                if r.cancel_action is not None:  # cancelled, then its worker died: it stays cancelled
                    cancelled = {"status": "interrupted", "output": None, "error": None}
                    await self._all("finish_run", {**params, **cancelled}, db)
                    await db.execute(Q["settle_thread_status"], {"thread_id": r.thread_id, "now": now})
                    continue
                if r.attempt < max_attempts:
                    await self._all("release_run", params, db)
                    continue
                error = {
                    "error": "RunAttemptsExhausted",
                    "message": f"the run's worker stopped {r.attempt} times without finishing it "
                    f"(max_attempts={max_attempts}); the last one's lease expired",
                }
                outcome = {"status": "error", "output": _dump({"__error__": error}), "error": _dump(error)}
                await self._all("finish_run", {**params, **outcome}, db)
                thread_params = {
                    "thread_id": r.thread_id,
                    "status": "error",
                    "values": None,
                    "interrupts": "{}",
                    "error": _dump(error),
                    "now": now,
                }
                await db.execute(Q["set_thread_after_run"], thread_params)
            return expired


def _page(page: Page, default_sort: str) -> dict[str, Any]:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "sort_by": page.sort_by or default_sort,
        "sort_order": page.sort_order if page.sort_order in ("asc", "desc") else "desc",
    }
