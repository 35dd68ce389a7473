"""Runs in the SQL control store, the worker's side: claims, leases (the attempt is the fencing token),
outcomes, rollbacks, releases at shutdown, and the reaping of expired leases."""

from __future__ import annotations

from datetime import timedelta

from graphrun import errors
from graphrun.models import Run, RunOutcome
from graphrun.stores import _rows
from graphrun.stores._sql.core import Db, SqlBase, clock, dump, timestamp


class Leases(SqlBase):
    """The worker's methods of ``ControlStore``."""

    async def claim_runs(self, worker_id: str, limit: int, lease_s: float) -> list[Run]:
        now = clock()
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
            "lease_expires_at": _rows.ts(clock() + timedelta(seconds=lease_s)),
        }
        row = await self._write_one("renew_lease", params)
        if row is None:
            raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
        action: str | None = row["cancel_action"]
        return action

    async def finish_run(self, run: Run, outcome: RunOutcome) -> None:
        now = timestamp()
        params = {
            "run_id": run.run_id,
            "attempt": run.attempt,
            "status": outcome.status,
            "output": dump(outcome.output),
            "error": dump(outcome.error),
            "usage": dump(outcome.usage),
            "now": now,
        }
        thread_params = {
            "thread_id": run.thread_id,
            "status": outcome.thread_status,
            "values": dump(outcome.thread_values),
            "interrupts": dump(outcome.interrupts),
            "error": dump(outcome.error),
            "now": now,
        }
        lost = errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
        if self._can.one_statement_finish:  # the transaction below, as one statement
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
            now = timestamp()
            if self._one("rollback_run", {"run_id": run.run_id, "attempt": run.attempt}, db) is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")
            thread_params = {
                "thread_id": run.thread_id,
                "status": outcome.thread_status,
                "values": dump(outcome.thread_values),
                "interrupts": dump(outcome.interrupts),
                "now": now,
            }
            db.execute(self._q["set_thread_after_rollback"], thread_params)

        return await self._write(tx)

    async def release_run(self, run: Run) -> None:
        """Give a claimed run back (shutdown): it is claimed again, its progress kept in checkpoints."""

        def tx(db: Db) -> None:
            params = {"run_id": run.run_id, "attempt": run.attempt, "now": timestamp()}
            if self._one("release_run", params, db) is None:
                raise errors.LeaseLost(f"Run {run.run_id} attempt {run.attempt} is no longer held")

        return await self._write(tx)

    async def reap_expired(self, max_attempts: int, *, all_running: bool = False) -> list[Run]:
        """Return runs whose lease expired to ``pending``, or end them in error after ``max_attempts``.

        ``all_running`` treats every running run as expired: embedded mode calls it at start-up, when
        the data-dir lock proves that no other process can be executing them.
        """

        def tx(db: Db) -> list[Run]:
            now = timestamp()
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
                outcome = {"status": "error", "output": dump({"__error__": error}), "error": dump(error)}
                self._all("finish_run", {**params, **outcome}, db)
                thread_params = {
                    "thread_id": r.thread_id,
                    "status": "error",
                    "values": None,
                    "interrupts": "{}",
                    "error": dump(error),
                    "now": now,
                }
                db.execute(self._q["set_thread_after_run"], thread_params)
            return expired

        return await self._write(tx)
