"""Threads in the SQL control store: created (or copied), their metadata, state and status, searched,
expired by their TTL, deleted with their runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphrun import errors
from graphrun.models import Run, Thread
from graphrun.stores import _rows
from graphrun.stores._sql.core import Db, SqlBase, dump, paging, timestamp
from graphrun.stores.base import Page
from graphrun.types import Json, ThreadStatus


class Threads(SqlBase):
    """The thread methods of ``ControlStore``."""

    def _thread_in(self, db: Db, thread_id: str) -> Thread:
        return _thread_found(self._one("get_thread", {"thread_id": thread_id}, db), thread_id)

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
            "metadata": dump(metadata),
            "values": dump(values),
            "config": "{}",
            "ttl_minutes": ttl_minutes,
            "ttl_strategy": ttl_strategy,
            "now": now or timestamp(),
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
                "metadata": dump(merged),
                "ttl_minutes": ttl_minutes,
                "ttl_strategy": ttl_strategy,
                "now": timestamp(),
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
            "now": timestamp(),
        }
        rows = await self._read_all("expired_threads", params)
        return [(row["thread_id"], row["ttl_strategy"]) for row in rows]

    async def touch_thread(self, thread_id: str) -> None:
        params = {"thread_id": thread_id, "now": timestamp()}
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
            "metadata": dump(metadata),
            "scope": dump(scope),
            "values": dump(values),
            "status": status,
            "ids": dump(list(ids)) if ids is not None else None,
            **paging(page, "created_at"),
        }
        return [_rows.thread(r) for r in await self._read_all("search_threads", params)]

    async def count_threads(
        self, metadata: Json, values: Json, status: ThreadStatus | None, *, scope: list[Json] | None = None
    ) -> int:
        params = {
            "metadata": dump(metadata),
            "values": dump(values),
            "status": status,
            "scope": dump(scope),
        }
        return int((await self._read_one("count_threads", params))["n"])

    async def set_thread_state(
        self, thread_id: str, values: Json | None, interrupts: dict[str, list[Json]], status: ThreadStatus
    ) -> None:
        def tx(db: Db) -> None:
            params = {
                "thread_id": thread_id,
                "values": dump(values),
                "interrupts": dump(interrupts),
                "status": status,
                "now": timestamp(),
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
                    "values": dump(source.values),
                    "interrupts": dump(source.interrupts),
                    "status": "idle" if source.status == "busy" else source.status,
                    "now": timestamp(),
                },
            )
            return _rows.thread(self._one("get_thread", {"thread_id": target_id}, db))

        return await self._write(tx)


def _thread_found(row: Any, thread_id: str) -> Thread:
    if row is None:
        raise errors.ThreadNotFound(f"Thread {thread_id} not found")
    return _rows.thread(row)
