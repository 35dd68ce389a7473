"""The drills' history checker: what the clients saw and what the database holds, against four invariants.

``bench/chaos.py`` gathers a ``History`` after each drill (the client's log of accepted runs and stream
resumes; the control store's ``runs`` table; each thread's checkpoints, messages and the drill graph's
record of node executions, through the SDK) and ``check`` lists every violation of:

1. **one final status**: every accepted run ended in a final status in the ``runs`` table, and it is the
   one the client saw (a run whose final status changed afterwards ended twice);
2. **no completed node ran again**: no execution of a node began after the checkpoint that completed that
   node's step was written (an execution before it may run again after a crash: it never completed), and
   every run that succeeded has its executions recorded (else this check would hold for want of data);
3. **no message twice**: no thread's state holds two messages with the same id, or the same type and
   content (every drill message is unique by construction: one question and one answer per thread);
4. **resumes continue at the right event**: a stream read again with ``Last-Event-ID`` after a disconnect
   gives exactly the events after that one in the run's full stream: no gap, no repeat, in order.

``resumed`` cuts and resumes a stream as a client does, ``gather`` reads the history; the checks are pure
functions of plain data, so that tests/unit/test_history_checker.py can show each check failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from langgraph_sdk.client import LangGraphClient

FINAL = ("success", "error", "timeout", "interrupted")


@dataclass(frozen=True)
class AcceptedRun:
    """A run the API accepted (created), and the final status its client saw (None: it never saw one)."""

    run_id: str
    thread_id: str
    seen_status: str | None


@dataclass(frozen=True)
class Execution:
    """One execution of a node, as the drill graph records it when the node begins (epoch seconds)."""

    thread_id: str
    run_id: str
    node: str
    step: int
    started_at: float


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a thread: its step (``metadata.step``) and when it was written (epoch seconds).
    A superstep is checkpointed once all its tasks are done: the checkpoint of step ``s`` completes every
    node that ran in step ``s``."""

    thread_id: str
    step: int
    created_at: float


@dataclass(frozen=True)
class Resume:
    """A stream read, cut after ``before`` (event ids), read again with ``Last-Event-ID: before[-1]`` as
    ``after``; ``full`` is the run's whole stream read from its start once the run had ended."""

    run_id: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    full: tuple[str, ...]


@dataclass
class History:
    runs: list[AcceptedRun] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # run id -> status in the runs table
    executions: list[Execution] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # thread id -> state messages
    resumes: list[Resume] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "runs": len(self.runs),
            "node executions": len(self.executions),
            "checkpoints": len(self.checkpoints),
            "threads": len(self.messages),
            "stream resumes": sum(1 for r in self.resumes if r.before and r.full),
            "stream resumes without their events (not judged for gaps)": sum(
                1 for r in self.resumes if r.before and not r.full
            ),
        }


def check_final_status(history: History) -> list[str]:
    found = []
    for run in history.runs:
        status = history.statuses.get(run.run_id)
        if status is None:
            found.append(f"run {run.run_id}: accepted but not in the runs table")
        elif status not in FINAL:
            found.append(f"run {run.run_id}: never reached a final status (still {status})")
        elif run.seen_status is not None and run.seen_status != status:
            found.append(f"run {run.run_id}: ended twice ({run.seen_status} seen, {status} stored)")
    return found


def check_no_rerun(history: History) -> list[str]:
    completed: dict[tuple[str, int], float] = {}  # (thread, step) -> when its first checkpoint was written
    for cp in history.checkpoints:
        key = (cp.thread_id, cp.step)
        completed[key] = min(cp.created_at, completed.get(key, cp.created_at))
    executed = {ex.run_id for ex in history.executions}
    found = [
        f"run {run.run_id}: succeeded with no node execution recorded"
        for run in history.runs
        if history.statuses.get(run.run_id) == "success" and run.run_id not in executed
    ]
    for ex in history.executions:
        done_at = completed.get((ex.thread_id, ex.step))
        if done_at is not None and ex.started_at > done_at:
            found.append(
                f"run {ex.run_id}: node {ex.node} of step {ex.step} ran again "
                f"{ex.started_at - done_at:.3f}s after its step was checkpointed"
            )
    return found


def check_no_duplicate_message(history: History) -> list[str]:
    found = []
    for thread_id, messages in history.messages.items():
        ids = Counter(m.get("id") for m in messages if m.get("id"))
        same = Counter((m.get("type"), str(m.get("content"))) for m in messages)
        found += [f"thread {thread_id}: message id {i} {n} times" for i, n in ids.items() if n > 1]
        found += [
            f"thread {thread_id}: {t} message {c[:40]!r} {n} times" for (t, c), n in same.items() if n > 1
        ]
    return found


def _order(event_id: str) -> tuple[int, ...]:
    """An event id (``<ms>-<seq>``) as a sortable tuple."""
    return tuple(int(part) for part in event_id.split("-"))


def check_resumes(history: History) -> list[str]:
    """Order and repeats are checked on the resumed read itself; gaps against the run's whole stream,
    unless that is gone (empty: a Redis that came back empty keeps no event of the run), when no gap can
    be judged (``History.counts`` says how many)."""
    found = []
    for resume in history.resumes:
        if not resume.before:
            continue
        last = resume.before[-1]
        ids = [_order(i) for i in (last, *resume.after)]
        if any(b <= a for a, b in itertools.pairwise(ids)):
            found.append(
                f"run {resume.run_id}: resumed after {last} with {list(resume.after)[:6]}: repeat or disorder"
            )
        elif not resume.full:
            continue
        elif last not in resume.full:
            found.append(
                f"run {resume.run_id}: event {last} is not in the run's stream {list(resume.full)[:6]}"
            )
        elif resume.after != resume.full[resume.full.index(last) + 1 :]:
            expected = resume.full[resume.full.index(last) + 1 :]
            found.append(
                f"run {resume.run_id}: resumed after {last} with {list(resume.after)[:6]}, "
                f"expected {list(expected)[:6]}"
            )
    return found


CHECKS = {
    "final_status": check_final_status,
    "no_rerun": check_no_rerun,
    "no_duplicate_message": check_no_duplicate_message,
    "resume": check_resumes,
}


def check(history: History) -> dict[str, list[str]]:
    """Each invariant's violations (an empty list: it holds)."""
    return {name: fn(history) for name, fn in CHECKS.items()}


def executions_from_store(thread_id: str, items: list[dict[str, Any]]) -> list[Execution]:
    """The drill graph's execution records (store items under ``("executions", thread_id)``)."""
    return [
        Execution(thread_id, str(v["run_id"]), str(v["node"]), int(v["step"]), float(v["started_at"]))
        for v in (item["value"] for item in items)
    ]


def checkpoints_from_history(thread_id: str, states: list[dict[str, Any]]) -> list[Checkpoint]:
    """Checkpoints from ``threads.get_history``."""
    found = []
    for state in states:
        step = (state.get("metadata") or {}).get("step")
        if step is not None and state.get("created_at"):
            created = datetime.fromisoformat(str(state["created_at"])).timestamp()
            found.append(Checkpoint(thread_id, int(step), created))
    return found


async def gather(
    client: LangGraphClient,
    database_uri: str,
    runs: list[AcceptedRun],
    messages: dict[str, list[dict[str, Any]]],
) -> History:
    """The history of ``runs``: their statuses from the ``runs`` table, each thread's checkpoints and node
    executions through the SDK; ``messages`` (each thread's state) and the resumes are the client's log."""
    history = History(runs=list(runs), messages=dict(messages))
    async with await psycopg.AsyncConnection.connect(database_uri) as conn:
        rows = await conn.execute(
            "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", ([r.run_id for r in runs],)
        )
        history.statuses = {str(run_id): str(status) for run_id, status in await rows.fetchall()}
    limit = asyncio.Semaphore(8)

    async def thread(thread_id: str) -> None:
        async with limit:
            states = await client.threads.get_history(thread_id, limit=1000)
            items = await client.store.search_items(["executions", thread_id], limit=1000)
        history.checkpoints += checkpoints_from_history(thread_id, [dict(s) for s in states])
        history.executions += executions_from_store(thread_id, [dict(i) for i in items["items"]])

    await asyncio.gather(*(thread(t) for t in {r.thread_id for r in runs}))
    return history


async def event_ids(client: LangGraphClient, thread_id: str, run_id: str, after: str, most: int) -> list[str]:
    """The ids of the run's events after event ``after`` (``-1``: from its start), at most ``most`` of them
    (the connection is then dropped, as a client that goes away does)."""
    ids: list[str] = []
    parts = client.runs.join_stream(thread_id, run_id, last_event_id=after)
    async with contextlib.aclosing(parts):  # type: ignore[type-var]
        async for part in parts:
            if part.id is not None:
                ids.append(part.id)
            if len(ids) >= most:
                break
    return ids


async def resumed(client: LangGraphClient, thread_id: str, run_id: str) -> tuple[list[str], list[str]]:
    """A stream read from the start, cut after its first event, and read again with ``Last-Event-ID``."""
    before = await event_ids(client, thread_id, run_id, "-1", 1)
    after = await event_ids(client, thread_id, run_id, before[-1], 10_000) if before else []
    return before, after
