"""Part 2 of ``bench/production.py``: background runs (``runs.create``, each on its own new thread)
drained by the workers, then read back (untimed) for their queue wait, execution and end-to-end times and
whether any was retried or restarted."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph_sdk.client import LangGraphClient

from bench._common import (
    TRIVIAL,
    BenchError,
    percentile,
)
from bench._production_infra import FIRST_RUN_TIMEOUT_S, T, cpu_sample, cpu_used, parse_time
from bench._production_report import Background

HISTORY_LIMIT = 50  # checkpoints read back per thread (a run without retries writes 4)
CHECK_CONCURRENCY = 16  # requests in flight while reading back the background runs (untimed)


async def bounded(items: Sequence[T], concurrency: int, fn: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """``fn`` over ``items`` with at most ``concurrency`` in flight; results in the order of ``items``."""
    results: list[Any] = [None] * len(items)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items):
            i = next_index
            next_index += 1
            results[i] = await fn(items[i])

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(min(concurrency, len(items))):
                group.create_task(worker(), name=f"bench-bounded-{i}")
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return results


async def new_threads(client: LangGraphClient, count: int) -> list[str]:
    """``count`` new threads (untimed)."""
    created = await bounded(range(count), CHECK_CONCURRENCY, lambda _: client.threads.create())
    return [t["thread_id"] for t in created]


async def finished_run(client: LangGraphClient, thread_id: str, run_id: str) -> dict[str, Any]:
    """The run once it has finished (joined if it has not), checked ``success``."""
    run: dict[str, Any] = dict(await client.runs.get(thread_id, run_id))
    if run["status"] in ("pending", "running"):
        await client.runs.join(thread_id, run_id)
        run = dict(await client.runs.get(thread_id, run_id))
    if run["status"] != "success":
        raise BenchError(f"background run {run_id} ended {run['status']}: {str(run)[:300]}")
    return run


@dataclass(frozen=True)
class Execution:
    """One background run read back: server timestamps, and how many times it was attempted."""

    created: datetime
    started: datetime
    finished: datetime
    attempts: int
    input_checkpoints: int


async def read_back(client: LangGraphClient, thread_id: str, run_id: str) -> Execution:
    """The run, finished and checked ``success``, and its thread's history, final values checked.

    It began executing at the timestamp of the first checkpoint it wrote (``source: input``, step -1;
    LangGraph stamps it when the graph's loop takes the input). Its attempts are the highest
    ``run_attempt`` graphrun put in its checkpoints' metadata; more than one input checkpoint means it
    was executed from the start more than once."""
    run = await finished_run(client, thread_id, run_id)
    history = await client.threads.get_history(thread_id, limit=HISTORY_LIMIT)
    if not history:
        raise BenchError(f"thread {thread_id} has no history")
    TRIVIAL.check(history[0]["values"], f"background run {run_id}")
    mine = [s for s in history if (s["metadata"] or {}).get("run_id") == run_id]
    inputs = [s for s in mine if (s["metadata"] or {}).get("source") == "input"]
    if not inputs:
        raise BenchError(f"thread {thread_id}: no input checkpoint of run {run_id} in {str(history)[:300]}")
    attempts = max(int((s["metadata"] or {}).get("run_attempt") or 1) for s in mine)
    return Execution(
        created=parse_time(run["created_at"], run_id),
        started=parse_time(inputs[-1]["created_at"], f"checkpoint of run {run_id}"),  # newest first
        finished=parse_time(run["updated_at"], run_id),
        attempts=attempts,
        input_checkpoints=len(inputs),
    )


async def drain_background(
    client: LangGraphClient, thread_ids: Sequence[str], concurrency: int
) -> tuple[list[tuple[str, str]], float]:
    """Create one run per thread (``concurrency`` requests in flight), then wait until the last one
    created has finished. Returns (thread, run) ids and the client time the creates took (s)."""
    begin = time.perf_counter()

    async def create(thread_id: str) -> tuple[str, str, datetime]:
        run = await client.runs.create(thread_id, TRIVIAL.assistant_id, input=TRIVIAL.input())
        return thread_id, run["run_id"], parse_time(run["created_at"], "runs.create")

    created: list[tuple[str, str, datetime]] = await bounded(thread_ids, concurrency, create)
    create_seconds = time.perf_counter() - begin
    last_thread, last_run, _ = max(created, key=lambda c: c[2])
    await client.runs.join(last_thread, last_run)  # the claim order is oldest first
    return [(t, r) for t, r, _ in created], create_seconds


async def bench_background(
    client: LangGraphClient, args: argparse.Namespace, processes: Mapping[str, int]
) -> Background:
    """Part 2: warm every worker up, then time ``--background-runs`` runs from first created to last
    finished, and read every run back (untimed) to check it and compute its queue wait."""
    warm = await new_threads(client, args.background_warmup)
    await asyncio.wait_for(drain_background(client, warm, args.create_concurrency), FIRST_RUN_TIMEOUT_S)
    thread_ids = await new_threads(client, args.background_runs)
    before = cpu_sample(processes)
    ids, create_seconds = await drain_background(client, thread_ids, args.create_concurrency)
    used = cpu_used(before, cpu_sample(processes))

    async def check(pair: tuple[str, str]) -> Execution:
        return await read_back(client, *pair)

    runs: list[Execution] = await bounded(ids, CHECK_CONCURRENCY, check)
    window = (max(r.finished for r in runs) - min(r.created for r in runs)).total_seconds()
    queue = [(r.started - r.created).total_seconds() for r in runs]
    execution = [(r.finished - r.started).total_seconds() for r in runs]
    end_to_end = [(r.finished - r.created).total_seconds() for r in runs]
    return Background(
        runs=len(runs),
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        create_seconds=create_seconds,
        window_seconds=window,
        throughput=len(runs) / window,
        retried_runs=sum(r.attempts > 1 for r in runs),
        restarted_runs=sum(r.input_checkpoints > 1 for r in runs),
        queue_wait_p50_ms=percentile(queue, 50) * 1000,
        queue_wait_p99_ms=percentile(queue, 99) * 1000,
        queue_wait_max_ms=max(queue) * 1000,
        execution_p50_ms=percentile(execution, 50) * 1000,
        execution_p99_ms=percentile(execution, 99) * 1000,
        end_to_end_p50_ms=percentile(end_to_end, 50) * 1000,
        end_to_end_p99_ms=percentile(end_to_end, 99) * 1000,
        cpu=used,
    )
