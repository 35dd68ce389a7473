"""Durability drills on the production topology (2 APIs, 2 workers), in short form: each fault once.

- A worker SIGKILLed after a step made its side effect and before the step was checkpointed: the step runs
  again on the other worker, and the effect (through ``graphrun.resilience.aonce``) happened once.
- A worker paused with SIGSTOP past its lease and resumed while the other worker has taken its run over:
  the paused worker learns it lost the lease and writes nothing more (its checkpoint writes are fenced by the
  lease, ``graphrun/fence.py``); the run finishes once, every step once.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Run

from tests.harness.cluster import BASE_ENV, Cluster
from tests.harness.waiting import PROCESSES, eventually
from tests.production._chat import chat_input, check_chat_messages

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(600)]

FINISHED = ("success", "error", "timeout", "interrupted")


async def _items(client: LangGraphClient, kind: str, thread_id: str) -> list[dict[str, Any]]:
    found = await client.store.search_items([kind, thread_id], limit=100)
    return [item["value"] for item in found["items"]]


async def _ended(client: LangGraphClient, thread_id: str, run_id: str) -> Run:
    """The run, once it has ended (taken over by the other worker after a lease, at worst)."""
    return await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda r: r["status"] in FINISHED,
        timeout_s=120.0,
        interval_s=PROCESSES["interval_s"],
        what=f"run {run_id} to end",
    )


async def test_a_worker_killed_between_a_side_effect_and_its_checkpoint_leaves_one_email(
    cluster: Cluster,
) -> None:
    """``emailer`` sends its email, then holds its step open (30 s) before the checkpoint. Its worker is
    SIGKILLed in that window; the other worker takes the run over when the lease expires and runs the step
    again. The run succeeds with the first send's answer, the step executed twice (once per worker), and
    the outbox holds exactly one email."""
    async with cluster.client(0) as client:
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread_id, "emailer", input={"to": "ann@example.com", "delay": 30.0})
        [email] = await eventually(
            lambda: _items(client, "outbox", thread_id),
            lambda found: len(found) == 1,
            what="the email sent",
            **PROCESSES,
        )
        victim = cluster.worker_pids[int(email["pid"])]
        victim.signal(signal.SIGKILL)
        assert await asyncio.to_thread(victim.wait_exit, 60.0) == -signal.SIGKILL

        ended = await _ended(client, thread_id, run["run_id"])
        assert ended["status"] == "success", ended
        state = await client.threads.get_state(thread_id)
        executions = await _items(client, "executions", thread_id)
        outbox = await _items(client, "outbox", thread_id)

    values = state["values"]
    assert isinstance(values, dict)
    assert values["sent"] == "sent to ann@example.com"
    pids = [int(e["pid"]) for e in executions]
    assert sorted(pids) == sorted({victim.pid, *pids}), f"the step executed once per worker: {pids}"
    assert len(pids) == 2, f"the step executed once per worker: {pids}"
    assert outbox == [email], f"emails sent: {outbox}"


async def _step_pids(client: LangGraphClient, thread_id: str) -> list[int]:
    state = await client.threads.get_state(thread_id)
    values = state["values"]
    messages = values.get("messages", []) if isinstance(values, dict) else []
    return [int(m["response_metadata"]["pid"]) for m in messages if m.get("type") == "ai"]


async def test_a_worker_paused_past_its_lease_writes_nothing_more_once_resumed(cluster: Cluster) -> None:
    """``chat`` (10 steps of 1 s) runs on one worker; after two steps that worker is stopped (SIGSTOP) with a
    step in flight. The other worker takes the run over when the lease expires and carries it on; then the
    paused one is resumed (SIGCONT): its lease is gone, so its step in flight must not reach the thread.
    The run ends ``success`` with each step's message exactly once, the later ones from the other worker,
    and the resumed worker logged that it lost the lease and is still serving."""
    steps = 10
    lease_s = float(BASE_ENV["GRAPHRUN_LEASE_S"])
    async with cluster.client(0) as client:
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread_id, "chat", input=chat_input("pause me", steps, 1.0))
        pids = await eventually(
            lambda: _step_pids(client, thread_id),
            lambda p: len(p) >= 2,
            what="two steps checkpointed",
            **PROCESSES,
        )
        paused = cluster.worker_pids[pids[-1]]
        paused.signal(signal.SIGSTOP)
        try:
            taken = await eventually(
                lambda: _step_pids(client, thread_id),
                lambda p: any(pid != paused.pid for pid in p),
                timeout_s=60.0 + lease_s,
                interval_s=PROCESSES["interval_s"],
                what="a step of the run on the other worker",
            )
        finally:
            paused.signal(signal.SIGCONT)
        ended = await _ended(client, thread_id, run["run_id"])
        state = await client.threads.get_state(thread_id)

    assert ended["status"] == "success", ended
    done_by = check_chat_messages(state["values"], "pause me", steps)
    first_other = next(i for i, pid in enumerate(done_by) if pid != paused.pid)
    assert set(done_by[first_other:]) == {taken[-1]}, f"steps after the takeover ran on {done_by}"
    assert paused.alive, "the resumed worker goes on serving"
    assert '"run_lease_lost"' in paused.output(), "the resumed worker says it lost the run's lease"
