"""The control store's logic, written once for both SQL dialects.

Every method is one transaction of named queries (``graphrun/sql/<dialect>/queries.sql``) run by a
``Db`` connection; the dialect adapters (``sqlite.py``, ``postgres.py``) only say how a transaction gets a
connection. Both run each transaction whole on a thread of their own with a synchronous driver (the
standard library's ``sqlite3``, psycopg's synchronous API): one thread hop per call, and one body of
control-store logic that the contract suite holds to the same behaviour on both databases. A caller
that is cancelled does not cut a transaction short: the thread finishes it.

Queries take JSON as text (Postgres casts it to ``jsonb``) and times as fixed-width UTC text, so that the
same parameters serve both dialects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from graphrun import encoding, errors, sql
from graphrun.models import Assistant, Cron, Run, RunOutcome, RunStats, Thread, utcnow
from graphrun.stores import _rows
from graphrun.stores.base import CreatedRun, Fired, NewRun, Page
from graphrun.types import CancelAction, Json, ThreadStatus

_ASSISTANT_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")
T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


class Db(Protocol):
    """A connection inside a transaction: rows read as mappings (``row["column"]``)."""

    def execute(self, query: str, params: Mapping[str, Any] = ..., /) -> Cursor: ...


def _now() -> str:
    return _rows.ts(utcnow())


def _rounded(value: Any, digits: int) -> float | None:
    """A number the dialects give as float or Decimal, to the precision both agree on (SQLite's
    julianday arithmetic is good to about 10 microseconds)."""
    return None if value is None else round(float(value), digits)


def _dump(value: Any) -> str | None:
    return None if value is None else encoding.dumps_str(value)


class SqlStore:
    """``ControlStore`` over named queries; subclasses provide ``_write`` and ``_read``."""

    def __init__(self, queries: Mapping[str, str]) -> None:
        self._q = queries

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
        if "lock_migrations" in self._q:
            db.execute(self._q["lock_migrations"], {})
        db.execute(self._q["create_migrations_table"], {})
        done = {row["version"] for row in db.execute(self._q["applied_migrations"], {}).fetchall()}
        for version, name, script in self._migrations():
            if version not in done:
                for statement in sql.statements(script):
                    db.execute(statement, {})
                db.execute(self._q["record_migration"], {"version": version, "name": name, "now": _now()})

    def _migrations(self) -> list[tuple[int, str, str]]:
        raise NotImplementedError

    def _lock_thread(self, db: Db, thread_id: str) -> None:
        """Where the dialect needs it (Postgres), hold the thread's row for the rest of the transaction:
        whoever decides a thread's status from its runs must see the runs others add meanwhile."""
        if "lock_thread" in self._q:
            db.execute(self._q["lock_thread"], {"thread_id": thread_id})

    def _locked_thread(self, db: Db, thread_id: str) -> Any:
        """The thread's row (None: no such thread), held as ``_lock_thread`` holds it, in one statement."""
        if "lock_thread" in self._q:
            return self._one("lock_thread", {"thread_id": thread_id}, db)
        return self._one("get_thread", {"thread_id": thread_id}, db)

    def _assistant_in(self, db: Db, assistant_id: str) -> Assistant:
        return _assistant_found(self._one("get_assistant", {"assistant_id": assistant_id}, db), assistant_id)

    def _thread_in(self, db: Db, thread_id: str) -> Thread:
        return _thread_found(self._one("get_thread", {"thread_id": thread_id}, db), thread_id)

    def _run_in(self, db: Db, thread_id: str, run_id: str) -> Run:
        row = self._one("get_run", {"thread_id": thread_id, "run_id": run_id}, db)
        return _run_found(row, thread_id, run_id)

    def _one(self, query: str, params: Mapping[str, Any], db: Db) -> Any:
        return db.execute(self._q[query], params).fetchone()

    def _all(self, query: str, params: Mapping[str, Any], db: Db) -> Any:
        return db.execute(self._q[query], params).fetchall()

    # ------------------------------------------------------------------ assistants

    async def ensure_system_assistant(
        self, assistant_id: str, graph_id: str, description: str | None
    ) -> None:
        def tx(db: Db) -> None:
            if self._one("get_assistant", {"assistant_id": assistant_id}, db) is None:
                self._insert_assistant(
                    db, assistant_id, graph_id, {}, {}, {"created_by": "system"}, graph_id, description
                )

        return await self._write(tx)

    def _insert_assistant(
        self,
        db: Db,
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
        db.execute(self._q["insert_assistant"], params)
        db.execute(self._q["insert_assistant_version"], {**params, "version": 1})

    async def create_assistant(self, assistant: Assistant, if_exists: str) -> Assistant:
        def tx(db: Db) -> Assistant:
            existing = self._one("get_assistant", {"assistant_id": assistant.assistant_id}, db)
            if existing is not None:
                if if_exists == "do_nothing":
                    return _rows.assistant(existing)
                raise errors.AlreadyExists(f"Assistant {assistant.assistant_id} already exists")
            a = assistant
            self._insert_assistant(
                db, a.assistant_id, a.graph_id, a.config, a.context, a.metadata, a.name, a.description
            )
            return _rows.assistant(self._one("get_assistant", {"assistant_id": a.assistant_id}, db))

        return await self._write(tx)

    async def get_assistant(self, assistant_id: str) -> Assistant:
        row = await self._read_one("get_assistant", {"assistant_id": assistant_id})
        return _assistant_found(row, assistant_id)

    async def update_assistant(self, assistant_id: str, changes: Json) -> Assistant:
        """A new version from the current one with ``changes`` applied; it becomes the current version."""

        def tx(db: Db) -> Assistant:
            current = self._assistant_in(db, assistant_id)
            fields: dict[str, Any] = {k: getattr(current, k) for k in _ASSISTANT_FIELDS}
            fields.update({k: v for k, v in changes.items() if k in _ASSISTANT_FIELDS and v is not None})
            fields["metadata"] = {
                **current.metadata,
                **changes.get("metadata", {}),
            }  # merged, as the SDK says
            version = (self._one("max_assistant_version", {"assistant_id": assistant_id}, db))["version"] + 1
            params = {
                **fields,
                "config": _dump(fields["config"]),
                "context": _dump(fields["context"]),
                "metadata": _dump(fields["metadata"]),
                "assistant_id": assistant_id,
                "version": version,
                "now": _now(),
            }
            db.execute(self._q["insert_assistant_version"], params)
            db.execute(self._q["set_assistant_current"], params)
            return _rows.assistant(self._one("get_assistant", {"assistant_id": assistant_id}, db))

        return await self._write(tx)

    async def delete_assistant(self, assistant_id: str) -> None:
        def tx(db: Db) -> None:
            cur = db.execute(self._q["delete_assistant"], {"assistant_id": assistant_id})
            if cur.rowcount == 0:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")

        return await self._write(tx)

    async def search_assistants(
        self,
        graph_id: str | None,
        metadata: Json,
        name: str | None,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Assistant]:
        params = {
            "graph_id": graph_id,
            "metadata": _dump(metadata),
            "scope": _dump(scope),
            "name": name,
            **_page(page, "created_at"),
        }
        return [_rows.assistant(r) for r in await self._read_all("search_assistants", params)]

    async def count_assistants(
        self, graph_id: str | None, metadata: Json, name: str | None, *, scope: list[Json] | None = None
    ) -> int:
        params = {"graph_id": graph_id, "metadata": _dump(metadata), "name": name, "scope": _dump(scope)}
        return int((await self._read_one("count_assistants", params))["n"])

    async def list_assistant_versions(self, assistant_id: str, metadata: Json, page: Page) -> list[Assistant]:
        await self.get_assistant(assistant_id)
        params = {"assistant_id": assistant_id, "metadata": _dump(metadata), "limit": page.limit}
        params["offset"] = page.offset
        return [_rows.assistant(r) for r in await self._read_all("list_assistant_versions", params)]

    async def set_assistant_latest(self, assistant_id: str, version: int) -> Assistant:
        def tx(db: Db) -> Assistant:
            row = self._one("get_assistant_version", {"assistant_id": assistant_id, "version": version}, db)
            if row is None:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} has no version {version}")
            chosen = _rows.assistant(row)
            params: dict[str, Any] = {
                k: getattr(chosen, k) for k in (*_ASSISTANT_FIELDS, "assistant_id", "version")
            }
            for key in ("config", "context", "metadata"):
                params[key] = _dump(params[key])
            db.execute(self._q["set_assistant_current"], {**params, "now": _now()})
            return _rows.assistant(self._one("get_assistant", {"assistant_id": assistant_id}, db))

        return await self._write(tx)

    # ------------------------------------------------------------------ threads

    async def create_thread(
        self,
        thread_id: str,
        metadata: Json,
        if_exists: str,
        ttl_minutes: float | None = None,
        ttl_strategy: str | None = None,
    ) -> Thread:
        def tx(db: Db) -> Thread:
            created = self._insert_thread(
                db, thread_id, metadata, ttl_minutes=ttl_minutes, ttl_strategy=ttl_strategy
            )
            if created is not None:
                return _rows.thread(created)
            if if_exists == "do_nothing":
                return self._thread_in(db, thread_id)
            raise errors.AlreadyExists(f"Thread {thread_id} already exists")

        return await self._write(tx)

    def _insert_thread(
        self,
        db: Db,
        thread_id: str,
        metadata: Json,
        values: Json | None = None,
        ttl_minutes: float | None = None,
        now: str | None = None,
        ttl_strategy: str | None = None,
    ) -> Any:
        """Insert the thread; return its row, or None if it already existed."""
        params = {
            "thread_id": thread_id,
            "metadata": _dump(metadata),
            "values": _dump(values),
            "config": "{}",
            "ttl_minutes": ttl_minutes,
            "ttl_strategy": ttl_strategy,
            "now": now or _now(),
        }
        return db.execute(self._q["insert_thread"], params).fetchone()

    async def get_thread(self, thread_id: str) -> Thread:
        return _thread_found(await self._read_one("get_thread", {"thread_id": thread_id}), thread_id)

    async def update_thread(
        self,
        thread_id: str,
        metadata: Json,
        ttl_minutes: float | None = None,
        ttl_strategy: str | None = None,
    ) -> Thread:
        """Merge ``metadata`` into the thread's: top-level keys replaced whole, as Postgres' ``||``; a
        ``ttl_minutes`` (and ``ttl_strategy``) replaces the thread's TTL."""

        def tx(db: Db) -> Thread:
            merged = {**self._thread_in(db, thread_id).metadata, **metadata}
            params = {
                "thread_id": thread_id,
                "metadata": _dump(merged),
                "ttl_minutes": ttl_minutes,
                "ttl_strategy": ttl_strategy,
                "now": _now(),
            }
            db.execute(self._q["set_thread_metadata"], params)
            return _rows.thread(self._one("get_thread", {"thread_id": thread_id}, db))

        return await self._write(tx)

    async def expired_threads(
        self, default_ttl_minutes: float, limit: int, default_strategy: str = "delete"
    ) -> list[tuple[str, str]]:
        params = {
            "default_ttl_minutes": default_ttl_minutes,
            "default_strategy": default_strategy,
            "limit": limit,
            "now": _now(),
        }
        rows = await self._read_all("expired_threads", params)
        return [(row["thread_id"], row["ttl_strategy"]) for row in rows]

    async def touch_thread(self, thread_id: str) -> None:
        params = {"thread_id": thread_id, "now": _now()}
        await self._write(lambda db: db.execute(self._q["touch_thread"], params))

    async def delete_thread(self, thread_id: str) -> list[Run]:
        """Delete the thread and its runs; return the runs that were in flight (the caller cancels them)."""

        def tx(db: Db) -> list[Run]:
            inflight = [_rows.run(r) for r in self._all("inflight_runs", {"thread_id": thread_id}, db)]
            cur = db.execute(self._q["delete_thread"], {"thread_id": thread_id})
            if cur.rowcount == 0:
                raise errors.ThreadNotFound(f"Thread {thread_id} not found")
            return inflight

        return await self._write(tx)

    async def search_threads(
        self,
        metadata: Json,
        values: Json,
        status: ThreadStatus | None,
        ids: Sequence[str] | None,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Thread]:
        params = {
            "metadata": _dump(metadata),
            "scope": _dump(scope),
            "values": _dump(values),
            "status": status,
            "ids": _dump(list(ids)) if ids is not None else None,
            **_page(page, "created_at"),
        }
        return [_rows.thread(r) for r in await self._read_all("search_threads", params)]

    async def count_threads(
        self, metadata: Json, values: Json, status: ThreadStatus | None, *, scope: list[Json] | None = None
    ) -> int:
        params = {
            "metadata": _dump(metadata),
            "values": _dump(values),
            "status": status,
            "scope": _dump(scope),
        }
        return int((await self._read_one("count_threads", params))["n"])

    async def set_thread_state(
        self, thread_id: str, values: Json | None, interrupts: dict[str, list[Json]], status: ThreadStatus
    ) -> None:
        def tx(db: Db) -> None:
            params = {
                "thread_id": thread_id,
                "values": _dump(values),
                "interrupts": _dump(interrupts),
                "status": status,
                "now": _now(),
            }
            cur = db.execute(self._q["set_thread_state"], params)
            if cur.rowcount == 0:
                raise errors.ThreadNotFound(f"Thread {thread_id} not found")

        return await self._write(tx)

    async def copy_thread(self, source_id: str, target_id: str) -> Thread:
        def tx(db: Db) -> Thread:
            source = self._thread_in(db, source_id)
            self._insert_thread(
                db,
                target_id,
                source.metadata,
                source.values,
                source.ttl_minutes,
                ttl_strategy=source.ttl_strategy,
            )
            db.execute(
                self._q["set_thread_state"],
                {
                    "thread_id": target_id,
                    "values": _dump(source.values),
                    "interrupts": _dump(source.interrupts),
                    "status": "idle" if source.status == "busy" else source.status,
                    "now": _now(),
                },
            )
            return _rows.thread(self._one("get_thread", {"thread_id": target_id}, db))

        return await self._write(tx)

    # ------------------------------------------------------------------ crons

    async def create_cron(self, cron: Cron) -> Cron:
        return _rows.cron(await self._write_one("insert_cron", _cron_params(cron)))

    async def get_cron(self, cron_id: str) -> Cron:
        return _cron_found(await self._read_one("get_cron", {"cron_id": cron_id}), cron_id)

    async def replace_cron(self, cron: Cron) -> Cron:
        return _cron_found(await self._write_one("update_cron", _cron_params(cron)), cron.cron_id)

    async def delete_cron(self, cron_id: str) -> None:
        def tx(db: Db) -> None:
            if db.execute(self._q["delete_cron"], {"cron_id": cron_id}).rowcount == 0:
                raise errors.CronNotFound(f"Cron {cron_id} not found")

        await self._write(tx)

    async def search_crons(
        self,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: Json,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Cron]:
        params = {
            "assistant_id": assistant_id,
            "thread_id": thread_id,
            "enabled": enabled,
            "metadata": _dump(metadata),
            "scope": _dump(scope),
            **_page(page, "created_at"),
        }
        return [_rows.cron(r) for r in await self._read_all("search_crons", params)]

    async def count_crons(
        self,
        assistant_id: str | None,
        thread_id: str | None,
        metadata: Json,
        *,
        scope: list[Json] | None = None,
    ) -> int:
        params = {
            "assistant_id": assistant_id,
            "thread_id": thread_id,
            "metadata": _dump(metadata),
            "scope": _dump(scope),
        }
        return int((await self._read_one("count_crons", params))["n"])

    async def due_crons(self, now: datetime, limit: int) -> list[Cron]:
        rows = await self._read_all("due_crons", {"now": _rows.ts(now), "limit": limit})
        return [_rows.cron(r) for r in rows]

    async def fire_cron(self, cron: Cron, next_run_date: datetime, run: NewRun) -> Fired:
        assert cron.next_run_date is not None, "a cron is fired at the tick it was read at"
        params = {
            "cron_id": cron.cron_id,
            "due": _rows.ts(cron.next_run_date),
            "next_run_date": _rows.ts(next_run_date),
        }

        def tx(db: Db) -> Fired:
            if db.execute(self._q["advance_cron"], params).rowcount == 0:
                return Fired(claimed=False)  # another worker fired this tick, or the cron changed
            try:  # both are refused before anything is written, so the tick's claim still commits
                created = self._create_run(db, run, _now())
            except (errors.ThreadBusy, errors.ThreadNotFound) as exc:
                return Fired(claimed=True, skipped=str(exc))
            return Fired(claimed=True, run=created.run, cancelled=created.cancelled)

        return await self._write(tx)

    # ------------------------------------------------------------------ runs

    async def create_run(self, new: NewRun) -> CreatedRun:
        """Insert the run in one transaction with its thread checks, busy check and strategy."""
        return (await self.create_runs([new]))[0]

    async def create_runs(self, runs: Sequence[NewRun]) -> list[CreatedRun]:
        """Insert several runs in one transaction: all of them, or (on any error) none."""
        if len(runs) == 1 and runs[0].if_not_exists == "create" and "insert_run_on_new_thread" in self._q:
            # The common "run on a new thread" in one statement where the dialect has it; when the thread
            # turns out to exist, nothing was written and the whole transaction below decides.
            params = self._run_params(runs[0], _now())
            row = await self._write_one("insert_run_on_new_thread", params)
            if row is not None:
                return [CreatedRun(run=_rows.run(row), cancelled=[])]

        def tx(db: Db) -> list[CreatedRun]:
            return [self._create_run(db, new, _now()) for new in runs]

        return await self._write(tx)

    def _create_run(self, db: Db, new: NewRun, now: str) -> CreatedRun:
        # A thread this transaction creates has no runs, and no one else can see it yet.
        creates = new.if_not_exists == "create"
        fresh = creates and self._insert_thread(db, new.thread_id, {}, now=now) is not None
        if not fresh and self._locked_thread(db, new.thread_id) is None:
            raise errors.ThreadNotFound(f"Thread {new.thread_id} not found")
        inflight = [] if fresh else self._inflight(db, new.thread_id)
        cancelled: list[Run] = []
        if inflight and new.multitask_strategy == "reject":
            raise errors.ThreadBusy(
                f"Thread {new.thread_id} is busy with run {inflight[0].run_id}; "
                "multitask_strategy='reject' refuses a second run"
            )
        if inflight and new.multitask_strategy in ("interrupt", "rollback"):
            cancelled = self._cancel_all(db, inflight, new.multitask_strategy, now)
        params = self._run_params(new, now)
        row = db.execute(self._q["insert_run"], params).fetchone()
        # Where the dialect's insert_run does not also mark the thread busy (and wake the workers):
        if "mark_thread_busy" in self._q:
            db.execute(self._q["mark_thread_busy"], params)
        return CreatedRun(run=_rows.run(row), cancelled=cancelled)

    @staticmethod
    def _run_params(new: NewRun, now: str) -> dict[str, Any]:
        return {
            "run_id": new.run_id,
            "thread_id": new.thread_id,
            "assistant_id": new.assistant_id,
            "graph_id": new.graph_id,
            "metadata": _dump(new.metadata),
            "multitask_strategy": new.multitask_strategy,
            "request": _rows.request_json(new.request),
            "available_at": _rows.ts(new.available_at),
            # What a run stamps on its thread's metadata (as the official server does).
            "stamp": _dump({**new.thread_stamp, "graph_id": new.graph_id, "assistant_id": new.assistant_id}),
            "now": now,
        }

    def _inflight(self, db: Db, thread_id: str) -> list[Run]:
        return [_rows.run(r) for r in self._all("inflight_runs", {"thread_id": thread_id}, db)]

    def _cancel_all(self, db: Db, runs: Sequence[Run], action: str, now: str) -> list[Run]:
        """Pending runs end now (``interrupted``, or deleted by a rollback); running ones are flagged
        for their worker, and returned so the caller can signal it."""
        for r in runs:
            if action == "rollback":
                db.execute(self._q["delete_pending_run"], {"run_id": r.run_id})
            else:
                db.execute(self._q["cancel_pending_run"], {"run_id": r.run_id, "action": action, "now": now})
            db.execute(self._q["request_cancel_running"], {"run_id": r.run_id, "action": action, "now": now})
        return [r for r in runs if r.status == "running"]

    async def get_run(self, thread_id: str, run_id: str) -> Run:
        row = await self._read_one("get_run", {"thread_id": thread_id, "run_id": run_id})
        return _run_found(row, thread_id, run_id)

    async def find_run(self, run_id: str) -> Run:
        row = await self._read_one("get_run_by_id", {"run_id": run_id})
        if row is None:
            raise errors.RunNotFound(f"Run {run_id} not found")
        return _rows.run(row)

    async def list_runs(self, thread_id: str, status: str | None, page: Page) -> list[Run]:
        if await self._read_one("get_thread", {"thread_id": thread_id}) is None:
            raise errors.ThreadNotFound(f"Thread {thread_id} not found")
        params = {"thread_id": thread_id, "status": status, "limit": page.limit, "offset": page.offset}
        return [_rows.run(r) for r in await self._read_all("list_runs", params)]

    async def inflight_runs(
        self, status: str | None, assistant_id: str | None, limit: int, *, scope: list[Json] | None = None
    ) -> list[Run]:
        params = {"status": status, "assistant_id": assistant_id, "limit": limit, "scope": _dump(scope)}
        return [_rows.run(r) for r in await self._read_all("inflight_runs_matching", params)]

    async def delete_run(self, thread_id: str, run_id: str) -> None:
        def tx(db: Db) -> None:
            run = self._run_in(db, thread_id, run_id)
            if not run.finished:
                raise errors.Conflict(f"Run {run_id} is {run.status}; cancel it before deleting it")
            db.execute(self._q["delete_run"], {"thread_id": thread_id, "run_id": run_id})

        return await self._write(tx)

    async def run_stats(
        self, since: datetime, until: datetime, graph_id: str | None, *, scope: list[Json] | None = None
    ) -> RunStats:
        """What the runs created in ``[since, until)`` (of ``graph_id``, or every graph; on threads in
        ``scope``, or every thread) add up to."""
        params = {
            "since": _rows.ts(since),
            "until": _rows.ts(until),
            "graph_id": graph_id,
            "scope": _dump(scope),
        }

        def read(db: Db) -> RunStats:  # one snapshot for every figure
            by_status = {r["status"]: int(r["runs"]) for r in self._all("stats_by_status", params, db)}
            turns = self._one("stats_turns", params, db)
            latency = self._one("stats_latency", params, db)
            tokens = {
                r["model"]: {"input": int(r["input"] or 0), "output": int(r["output"] or 0)}
                for r in self._all("stats_tokens", params, db)
            }
            finished = sum(n for status, n in by_status.items() if status not in ("pending", "running"))
            return RunStats(
                runs=sum(by_status.values()),
                threads=int(turns["threads"]),
                by_status=by_status,
                turns_avg=_rounded(turns["turns_avg"], 3),
                turns_p95=None if turns["turns_p95"] is None else int(turns["turns_p95"]),
                latency_p50_s=_rounded(latency["p50"], 3),
                latency_p95_s=_rounded(latency["p95"], 3),
                latency_p99_s=_rounded(latency["p99"], 3),
                error_rate=round(by_status.get("error", 0) / finished, 4) if finished else None,
                timeout_rate=round(by_status.get("timeout", 0) / finished, 4) if finished else None,
                tokens=tokens,
            )

        return await self._read(read)

    async def delete_old_runs(self, days: float, limit: int) -> int:
        """Delete up to ``limit`` runs that finished more than ``days`` days ago; say how many went."""
        params = {"days": days, "limit": limit, "now": _now()}
        return len(await self._write_all("delete_old_runs", params))

    async def cancel_run(self, thread_id: str, run_id: str, action: CancelAction) -> Run:
        """Pending runs end ``interrupted`` at once; running ones are flagged for their worker."""

        def tx(db: Db) -> Run:
            self._lock_thread(db, thread_id)
            run = self._run_in(db, thread_id, run_id)
            if run.finished:
                raise errors.RunNotFound(
                    f"Run {run_id} is already {run.status}: only pending or running runs can be cancelled"
                )
            now = _now()
            self._cancel_all(db, [run], action, now)
            db.execute(self._q["settle_thread_status"], {"thread_id": thread_id, "now": now})
            after = self._one("get_run_by_id", {"run_id": run_id}, db)
            return run if after is None else _rows.run(after)

        return await self._write(tx)

    # ------------------------------------------------------------------ the worker's side

    async def claim_runs(self, worker_id: str, limit: int, lease_s: float) -> list[Run]:
        now = utcnow()
        params = {
            "worker_id": worker_id,
            "limit": limit,
            "now": _rows.ts(now),
            "lease_expires_at": _rows.ts(now + timedelta(seconds=lease_s)),
        }
        return [_rows.run(r) for r in await self._write_all("claim_runs", params)]

    async def renew_lease(self, run: Run, worker_id: str, lease_s: float) -> str | None:
        """Extend the lease; return the cancel action asked for, if any. Raise ``LeaseLost`` if not ours."""

        params = {
            "run_id": run.run_id,
            "attempt": run.attempt,
            "worker_id": worker_id,
            "lease_expires_at": _rows.ts(utcnow() + timedelta(seconds=lease_s)),
        }
        row = await self._write_one("renew_lease", params)
        if row is None:
            raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
        action: str | None = row["cancel_action"]
        return action

    async def finish_run(self, run: Run, outcome: RunOutcome) -> None:
        now = _now()
        params = {
            "run_id": run.run_id,
            "attempt": run.attempt,
            "status": outcome.status,
            "output": _dump(outcome.output),
            "error": _dump(outcome.error),
            "usage": _dump(outcome.usage),
            "now": now,
        }
        thread_params = {
            "thread_id": run.thread_id,
            "status": outcome.thread_status,
            "values": _dump(outcome.thread_values),
            "interrupts": _dump(outcome.interrupts),
            "error": _dump(outcome.error),
            "now": now,
        }
        lost = errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
        if "finish_run_and_thread" in self._q:  # the transaction below, as one statement of the dialect's
            both = {**thread_params, **params, "thread_status": outcome.thread_status}
            row = await self._write_one("finish_run_and_thread", both)
            if not row["finished"]:
                raise lost
            return

        def tx(db: Db) -> None:
            self._lock_thread(db, run.thread_id)
            if self._one("finish_run", params, db) is None:
                raise lost
            db.execute(self._q["set_thread_after_run"], thread_params)

        return await self._write(tx)

    async def rollback_run(self, run: Run, outcome: RunOutcome) -> None:
        """Delete a run its worker rolled back, and set its thread to the state it went back to."""

        def tx(db: Db) -> None:
            self._lock_thread(db, run.thread_id)
            now = _now()
            if self._one("rollback_run", {"run_id": run.run_id, "attempt": run.attempt}, db) is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
            thread_params = {
                "thread_id": run.thread_id,
                "status": outcome.thread_status,
                "values": _dump(outcome.thread_values),
                "interrupts": _dump(outcome.interrupts),
                "now": now,
            }
            db.execute(self._q["set_thread_after_rollback"], thread_params)

        return await self._write(tx)

    async def release_run(self, run: Run) -> None:
        """Give a claimed run back (shutdown): it is claimed again, its progress kept in checkpoints."""

        def tx(db: Db) -> None:
            params = {"run_id": run.run_id, "attempt": run.attempt, "now": _now()}
            if self._one("release_run", params, db) is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")

        return await self._write(tx)

    async def reap_expired(self, max_attempts: int, *, all_running: bool = False) -> list[Run]:
        """Return runs whose lease expired to ``pending``, or end them in error after ``max_attempts``.

        ``all_running`` treats every running run as expired: embedded mode calls it at start-up, when
        the data-dir lock proves that no other process can be executing them.
        """

        def tx(db: Db) -> list[Run]:
            now = _now()
            query = "all_running_runs" if all_running else "expired_runs"
            expired = [_rows.run(r) for r in self._all(query, {"now": now}, db)]
            for r in expired:
                self._lock_thread(db, r.thread_id)
                params = {"run_id": r.run_id, "attempt": r.attempt, "now": now, "usage": None}
                if r.cancel_action == "rollback":  # its worker died before undoing it: the next one will
                    self._all("release_run", params, db)
                    continue
                if r.cancel_action is not None:  # cancelled, then its worker died: it stays cancelled
                    cancelled = {"status": "interrupted", "output": None, "error": None}
                    self._all("finish_run", {**params, **cancelled}, db)
                    db.execute(self._q["settle_thread_status"], {"thread_id": r.thread_id, "now": now})
                    continue
                if r.attempt < max_attempts:
                    self._all("release_run", params, db)
                    continue
                error = {
                    "error": "RunAttemptsExhausted",
                    "message": f"the run's worker stopped {r.attempt} times without finishing it "
                    f"(max_attempts={max_attempts}); the last one's lease expired",
                }
                outcome = {"status": "error", "output": _dump({"__error__": error}), "error": _dump(error)}
                self._all("finish_run", {**params, **outcome}, db)
                thread_params = {
                    "thread_id": r.thread_id,
                    "status": "error",
                    "values": None,
                    "interrupts": "{}",
                    "error": _dump(error),
                    "now": now,
                }
                db.execute(self._q["set_thread_after_run"], thread_params)
            return expired

        return await self._write(tx)


def _assistant_found(row: Any, assistant_id: str) -> Assistant:
    if row is None:
        raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")
    return _rows.assistant(row)


def _cron_found(row: Any, cron_id: str) -> Cron:
    if row is None:
        raise errors.CronNotFound(f"Cron {cron_id} not found")
    return _rows.cron(row)


def _cron_params(cron: Cron) -> dict[str, Any]:
    return {
        "cron_id": cron.cron_id,
        "assistant_id": cron.assistant_id,
        "thread_id": cron.thread_id,
        "user_id": cron.user_id,
        "schedule": cron.schedule,
        "timezone": cron.timezone,
        "end_time": _rows.ts(cron.end_time) if cron.end_time else None,
        "enabled": cron.enabled,
        "on_run_completed": cron.on_run_completed,
        "next_run_date": _rows.ts(cron.next_run_date) if cron.next_run_date else None,
        "payload": _dump(cron.payload),
        "metadata": _dump(cron.metadata),
        "template": _dump(cron.template),
        "now": _now(),
    }


def _thread_found(row: Any, thread_id: str) -> Thread:
    if row is None:
        raise errors.ThreadNotFound(f"Thread {thread_id} not found")
    return _rows.thread(row)


def _run_found(row: Any, thread_id: str, run_id: str) -> Run:
    if row is None:
        raise errors.RunNotFound(f"Run {run_id} not found on thread {thread_id}")
    return _rows.run(row)


def _page(page: Page, default_sort: str) -> dict[str, Any]:
    return {
        "limit": page.limit,
        "offset": page.offset,
        "sort_by": page.sort_by or default_sort,
        "sort_order": page.sort_order if page.sort_order in ("asc", "desc") else "desc",
    }
