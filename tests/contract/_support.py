"""Builders shared by the contract tests: records made the way the API makes them."""

from __future__ import annotations

from datetime import timedelta

from graphrun.models import Assistant, Run, RunOutcome, RunRequest, new_id, system_assistant_id, utcnow
from graphrun.stores.base import ControlStore, NewRun
from graphrun.types import IfNotExists, Json, MultitaskStrategy, RunStatus, ThreadStatus

GRAPH_ID = "agent"
ASSISTANT_ID = system_assistant_id(GRAPH_ID)
WORKER = "worker-1"
LEASE_S = 60.0
# A lease that expired before it was taken: the reaper sees it at once, no sleeping.
EXPIRED_LEASE_S = -1.0


def assistant(
    name: str = "helper",
    *,
    graph_id: str = GRAPH_ID,
    metadata: Json | None = None,
    config: Json | None = None,
    assistant_id: str | None = None,
) -> Assistant:
    now = utcnow()
    return Assistant(
        assistant_id=assistant_id or new_id(),
        graph_id=graph_id,
        config=config if config is not None else {},
        context={},
        metadata=metadata if metadata is not None else {},
        name=name,
        description=f"{name} description",
        version=1,
        created_at=now,
        updated_at=now,
    )


def new_run(
    thread_id: str,
    *,
    strategy: MultitaskStrategy = "enqueue",
    if_not_exists: IfNotExists = "create",
    delay_s: float = 0.0,
    metadata: Json | None = None,
    request: RunRequest | None = None,
) -> NewRun:
    return NewRun(
        run_id=new_id(),
        thread_id=thread_id,
        assistant_id=ASSISTANT_ID,
        graph_id=GRAPH_ID,
        metadata=metadata if metadata is not None else {},
        multitask_strategy=strategy,
        request=request or RunRequest(),
        available_at=utcnow() + timedelta(seconds=delay_s),
        if_not_exists=if_not_exists,
    )


async def add_run(
    store: ControlStore,
    thread_id: str,
    *,
    strategy: MultitaskStrategy = "enqueue",
    delay_s: float = 0.0,
    metadata: Json | None = None,
) -> Run:
    """Create a pending run (thread created if missing) and return it."""
    new = new_run(thread_id, strategy=strategy, delay_s=delay_s, metadata=metadata)
    return (await store.create_run(new)).run


async def claim_one(store: ControlStore, lease_s: float = LEASE_S, worker_id: str = WORKER) -> Run:
    claimed = await store.claim_runs(worker_id, 10, lease_s)
    assert len(claimed) == 1, claimed
    return claimed[0]


async def running_run(store: ControlStore, thread_id: str, lease_s: float = LEASE_S) -> Run:
    """A run on ``thread_id`` claimed by ``WORKER`` (the store must hold no other pending run)."""
    run = await add_run(store, thread_id)
    claimed = await claim_one(store, lease_s)
    assert claimed.run_id == run.run_id
    return claimed


def outcome(
    status: RunStatus = "success",
    *,
    values: Json | None = None,
    thread_status: ThreadStatus = "idle",
    interrupts: dict[str, list[Json]] | None = None,
    error: Json | None = None,
) -> RunOutcome:
    return RunOutcome(
        status=status,
        output=values,
        thread_status=thread_status,
        thread_values=values,
        interrupts=interrupts if interrupts is not None else {},
        error=error,
    )


async def finished_run(store: ControlStore, thread_id: str, values: Json | None = None) -> Run:
    """A run on ``thread_id`` that ran and ended ``success``; returns its stored row."""
    run = await running_run(store, thread_id)
    await store.finish_run(run, outcome(values=values))
    return await store.find_run(run.run_id)
