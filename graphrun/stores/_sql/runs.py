"""Runs in the SQL control store, the API's side: created on their thread (its checks, the busy check
and the multitask strategy in one transaction), read, listed, counted in the stats, cancelled, deleted.
The worker's side of a run (claims, leases, outcomes) is ``leases.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from graphrun import errors
from graphrun.models import Run, RunStats
from graphrun.stores import _rows
from graphrun.stores._sql.core import Db, dump, timestamp
from graphrun.stores._sql.threads import Threads
from graphrun.stores.base import CreatedRun, NewRun, Page
from graphrun.types import CancelAction, Json


class Runs(Threads):
    """The run methods of ``ControlStore`` that the API calls (a run lives on a thread, which creating it
    may create: hence ``Threads``)."""

    def _run_in(self, db: Db, thread_id: str, run_id: str) -> Run:
        row = self._one("get_run", {"thread_id": thread_id, "run_id": run_id}, db)
        return _run_found(row, thread_id, run_id)

    async def create_run(self, new: NewRun) -> CreatedRun:
        """Insert the run in one transaction with its thread checks, busy check and strategy."""
        return (await self.create_runs([new]))[0]

    async def create_runs(self, runs: Sequence[NewRun]) -> list[CreatedRun]:
        """Insert several runs in one transaction: all of them, or (on any error) none."""
        if len(runs) == 1 and runs[0].if_not_exists == "create" and self._can.one_statement_new_thread_run:
            # The common "run on a new thread" in one statement where the dialect has it; when the thread
            # turns out to exist, nothing was written and the whole transaction below decides.
            params = self._run_params(runs[0], timestamp())
            row = await self._write_one("insert_run_on_new_thread", params)
            if row is not None:
                return [CreatedRun(run=_rows.run(row), cancelled=[])]

        def tx(db: Db) -> list[CreatedRun]:
            return [self._create_run(db, new, timestamp()) for new in runs]

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
            strategy = new.multitask_strategy
            cancelled = self._cancel_all(db, inflight, strategy, now, f"superseded_by_{strategy}")
        params = self._run_params(new, now)
        row = db.execute(self._q["insert_run"], params).fetchone()
        if not self._can.insert_run_marks_busy:
            db.execute(self._q["mark_thread_busy"], params)
        return CreatedRun(run=_rows.run(row), cancelled=cancelled)

    @staticmethod
    def _run_params(new: NewRun, now: str) -> dict[str, Any]:
        return {
            "run_id": new.run_id,
            "thread_id": new.thread_id,
            "assistant_id": new.assistant_id,
            "graph_id": new.graph_id,
            "metadata": dump(new.metadata),
            "multitask_strategy": new.multitask_strategy,
            "request": _rows.request_json(new.request),
            "available_at": _rows.ts(new.available_at),
            # What a run stamps on its thread's metadata (as the official server does).
            "stamp": dump({**new.thread_stamp, "graph_id": new.graph_id, "assistant_id": new.assistant_id}),
            "priority": new.priority,
            "fairness_group": new.fairness_group,
            "now": now,
        }

    def _inflight(self, db: Db, thread_id: str) -> list[Run]:
        return [_rows.run(r) for r in self._all("inflight_runs", {"thread_id": thread_id}, db)]

    def _cancel_all(self, db: Db, runs: Sequence[Run], action: str, now: str, reason: str) -> list[Run]:
        """Pending runs end now (``interrupted``, or deleted by a rollback); running ones are flagged
        for their worker, and returned so the caller can signal it. ``reason`` is recorded on each
        (``Run.cancel_reason``; the first reason given stays)."""
        for r in runs:
            params = {"run_id": r.run_id, "action": action, "now": now, "reason": reason}
            if action == "rollback":
                db.execute(self._q["delete_pending_run"], {"run_id": r.run_id})
            else:
                db.execute(self._q["cancel_pending_run"], params)
            db.execute(self._q["request_cancel_running"], params)
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
        params = {"status": status, "assistant_id": assistant_id, "limit": limit, "scope": dump(scope)}
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
            "scope": dump(scope),
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
        params = {"days": days, "limit": limit, "now": timestamp()}
        return len(await self._write_all("delete_old_runs", params))

    async def cancel_run(
        self, thread_id: str, run_id: str, action: CancelAction, reason: str = "cancelled"
    ) -> Run:
        """Pending runs end ``interrupted`` at once; running ones are flagged for their worker."""

        def tx(db: Db) -> Run:
            self._lock_thread(db, thread_id)
            run = self._run_in(db, thread_id, run_id)
            if run.finished:
                raise errors.RunNotFound(
                    f"Run {run_id} is already {run.status}: only pending or running runs can be cancelled"
                )
            now = timestamp()
            self._cancel_all(db, [run], action, now, reason)
            db.execute(self._q["settle_thread_status"], {"thread_id": thread_id, "now": now})
            after = self._one("get_run_by_id", {"run_id": run_id}, db)
            return run if after is None else _rows.run(after)

        return await self._write(tx)


def _rounded(value: Any, digits: int) -> float | None:
    """A number the dialects give as float or Decimal, to the precision both agree on (SQLite's
    julianday arithmetic is good to about 10 microseconds)."""
    return None if value is None else round(float(value), digits)


def _run_found(row: Any, thread_id: str, run_id: str) -> Run:
    if row is None:
        raise errors.RunNotFound(f"Run {run_id} not found on thread {thread_id}")
    return _rows.run(row)
