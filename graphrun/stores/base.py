"""The control store's interface: every read and write of assistants, threads and runs.

Two adapters implement it (SQLite for embedded mode, PostgreSQL for production) and one contract suite,
``tests/contract``, holds both to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from graphrun.models import Assistant, Cron, Run, RunOutcome, RunRequest, RunStats, Thread
from graphrun.types import CancelAction, IfNotExists, Json, MultitaskStrategy, ThreadStatus


@dataclass(frozen=True)
class NewRun:
    """A run as the API asks the store to create it."""

    run_id: str
    thread_id: str
    assistant_id: str
    graph_id: str
    metadata: Json
    multitask_strategy: MultitaskStrategy
    request: RunRequest
    available_at: datetime
    if_not_exists: IfNotExists = "reject"
    # More metadata the run stamps on its thread, beside its graph and assistant (the owner, when the
    # caller's authorization adds one: a thread the run creates belongs to its caller).
    thread_stamp: Json = field(default_factory=dict)
    # The thread's priority settings when this run assigns them (``priority.path``): stored on the thread
    # unless it has settings already. None: the thread's own, or the defaults.
    priority: int | None = None
    fairness_group: str | None = None


@dataclass(frozen=True)
class Fired:
    """What firing a cron's tick did: ``claimed`` False when another worker had fired it; ``run`` None
    with ``skipped`` saying why when the tick was used up without a run (its thread busy under
    ``reject``, or gone)."""

    claimed: bool
    run: Run | None = None
    cancelled: Sequence[Run] = ()
    skipped: str | None = None


@dataclass(frozen=True)
class CreatedRun:
    """The new run, and the runs on its thread that its multitask strategy asked to cancel."""

    run: Run
    cancelled: Sequence[Run] = ()


@dataclass(frozen=True)
class Page:
    limit: int = 10
    offset: int = 0
    sort_by: str | None = None
    sort_order: str = "desc"


class ControlStore(Protocol):
    # assistants
    async def ensure_system_assistant(
        self, assistant_id: str, graph_id: str, description: str | None
    ) -> None: ...
    async def create_assistant(
        self,
        assistant: Assistant,
        if_exists: str,
    ) -> Assistant: ...
    async def get_assistant(self, assistant_id: str) -> Assistant: ...
    async def update_assistant(self, assistant_id: str, changes: Json) -> Assistant: ...
    async def delete_assistant(self, assistant_id: str) -> None: ...
    # ``scope``, on searches and counts: what the caller's authorization lets it see, as metadata filters
    # (a resource is in scope when its metadata contains one of them); None restricts nothing.
    async def search_assistants(
        self,
        graph_id: str | None,
        metadata: Json,
        name: str | None,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Assistant]: ...
    async def count_assistants(
        self, graph_id: str | None, metadata: Json, name: str | None, *, scope: list[Json] | None = None
    ) -> int: ...
    async def list_assistant_versions(
        self, assistant_id: str, metadata: Json, page: Page
    ) -> list[Assistant]: ...
    async def set_assistant_latest(self, assistant_id: str, version: int) -> Assistant: ...

    # threads
    async def create_thread(
        self,
        thread_id: str,
        metadata: Json,
        if_exists: str,
        ttl_minutes: float | None = None,
        ttl_strategy: str | None = None,
    ) -> Thread: ...
    async def get_thread(self, thread_id: str) -> Thread: ...
    async def update_thread(
        self,
        thread_id: str,
        metadata: Json,
        ttl_minutes: float | None = None,
        ttl_strategy: str | None = None,
    ) -> Thread: ...
    async def expired_threads(
        self, default_ttl_minutes: float, limit: int, default_strategy: str = "delete"
    ) -> list[tuple[str, str]]:
        """Threads with nothing in flight that were not updated for their TTL (their own, else the
        default; 0 means never), oldest first, each with its TTL strategy (``delete``, ``keep_latest``;
        ``default_strategy`` for a thread without one)."""
        ...

    async def touch_thread(self, thread_id: str) -> None:
        """Restart the thread's TTL clock (after a ``keep_latest`` sweep pruned it)."""
        ...

    async def delete_thread(self, thread_id: str) -> list[Run]: ...
    async def search_threads(
        self,
        metadata: Json,
        values: Json,
        status: ThreadStatus | None,
        ids: Sequence[str] | None,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Thread]: ...
    async def count_threads(
        self, metadata: Json, values: Json, status: ThreadStatus | None, *, scope: list[Json] | None = None
    ) -> int: ...
    async def set_thread_state(
        self, thread_id: str, values: Json | None, interrupts: dict[str, list[Json]], status: ThreadStatus
    ) -> None: ...
    async def copy_thread(self, source_id: str, target_id: str) -> Thread: ...

    # runs
    async def create_run(self, new: NewRun) -> CreatedRun: ...
    async def create_runs(self, runs: Sequence[NewRun]) -> list[CreatedRun]: ...
    async def get_run(self, thread_id: str, run_id: str) -> Run: ...
    async def find_run(self, run_id: str) -> Run: ...
    async def list_runs(self, thread_id: str, status: str | None, page: Page) -> list[Run]: ...
    async def inflight_runs(
        self, status: str | None, assistant_id: str | None, limit: int, *, scope: list[Json] | None = None
    ) -> list[Run]:
        """Pending and running runs on every thread (in ``scope``), oldest first; ``status`` narrows to
        one of the two."""
        ...

    async def delete_run(self, thread_id: str, run_id: str) -> None: ...
    async def run_stats(
        self, since: datetime, until: datetime, graph_id: str | None, *, scope: list[Json] | None = None
    ) -> RunStats:
        """What the runs created in ``[since, until)`` (of ``graph_id``, or every graph; on the threads
        whose metadata contains one of ``scope``'s filters, or every thread) add up to."""
        ...

    async def delete_old_runs(self, days: float, limit: int) -> int:
        """Runs that finished more than ``days`` days ago go (their threads stay); how many went."""
        ...

    async def cancel_run(
        self, thread_id: str, run_id: str, action: CancelAction, reason: str = "cancelled"
    ) -> Run:
        """A running run is flagged for its worker; a pending one ends now: ``interrupted``, or with
        ``rollback`` deleted (then it is returned as it was, still ``pending``). A finished run is
        ``RunNotFound`` (nothing to cancel), as on the official server."""
        ...

    # crons
    async def create_cron(self, cron: Cron) -> Cron: ...
    async def get_cron(self, cron_id: str) -> Cron: ...
    async def replace_cron(self, cron: Cron) -> Cron:
        """Write every mutable field of the cron as given (``CronNotFound`` if it is gone); a
        ``next_run_date`` of None keeps the tick the stored cron is at."""
        ...

    async def delete_cron(self, cron_id: str) -> None: ...
    async def search_crons(
        self,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: Json,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Cron]: ...
    async def count_crons(
        self,
        assistant_id: str | None,
        thread_id: str | None,
        metadata: Json,
        *,
        scope: list[Json] | None = None,
    ) -> int: ...
    async def due_crons(self, now: datetime, limit: int) -> list[Cron]:
        """Enabled crons whose ``next_run_date`` has come and whose ``end_time`` has not, soonest first."""
        ...

    async def fire_cron(self, cron: Cron, next_run_date: datetime, run: NewRun) -> Fired:
        """In one transaction: move the cron from the tick it was read at to ``next_run_date``, and write
        its run. Only one caller wins a tick: another that read the same tick changes nothing."""
        ...

    # the worker's side
    async def claim_runs(self, worker_id: str, limit: int, lease_s: float) -> list[Run]: ...
    async def renew_lease(self, run: Run, worker_id: str, lease_s: float) -> str | None: ...
    async def finish_run(self, run: Run, outcome: RunOutcome) -> None: ...
    async def rollback_run(self, run: Run, outcome: RunOutcome) -> None: ...
    async def release_run(self, run: Run) -> None: ...
    async def reap_expired(self, max_attempts: int, *, all_running: bool = False) -> list[Run]: ...
