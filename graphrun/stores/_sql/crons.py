"""Crons in the SQL control store: created, replaced, searched, deleted, and fired (a tick claimed and
its run created in one transaction, so that two workers never fire one tick)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graphrun import errors
from graphrun.models import Cron
from graphrun.stores import _rows
from graphrun.stores._sql.core import Db, dump, paging, timestamp
from graphrun.stores._sql.runs import Runs
from graphrun.stores.base import Fired, NewRun, Page
from graphrun.types import Json


class Crons(Runs):
    """The cron methods of ``ControlStore`` (firing one creates a run: hence ``Runs``)."""

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
            "metadata": dump(metadata),
            "scope": dump(scope),
            **paging(page, "created_at"),
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
            "metadata": dump(metadata),
            "scope": dump(scope),
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
                created = self._create_run(db, run, timestamp())
            except (errors.ThreadBusy, errors.ThreadNotFound) as exc:
                return Fired(claimed=True, skipped=str(exc))
            return Fired(claimed=True, run=created.run, cancelled=created.cancelled)

        return await self._write(tx)


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
        "payload": dump(cron.payload),
        "metadata": dump(cron.metadata),
        "template": dump(cron.template),
        "now": timestamp(),
    }
