"""Restart survival of the embedded mode: everything lives in the SQLite files of the data directory.

A server stopped with SIGTERM or killed with SIGKILL and started again on the same directory keeps its
threads, state, history, runs, assistants and store items, and finishes the runs that were pending or
running, running ones from their last checkpoint.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.embedded import Server
from tests.harness.sdk import as_dict

from ._support import slow_steps_done, unique

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]

# Short leases, so that even a server that waited for the dead process's leases to expire before taking its
# runs over would finish within the test timeout. Embedded mode is one process and should not need to wait.
SERVER_ENV = {"GRAPHRUN_LEASE_S": "10", "GRAPHRUN_HEARTBEAT_INTERVAL_S": "2"}

# Long enough that a run still has more work left when SIGTERM comes than the 2 s grace period covers:
# the SIGTERM case must go through drain (stop at a step boundary) and resume on the next process.
SLOW_STEPS = 10
SLOW_DELAY_S = 0.5


async def _snapshot(client: LangGraphClient, thread_ids: list[str], assistant_id: str, marker: str) -> Any:
    """Everything a client can observe about what the test wrote."""
    threads = []
    for tid in thread_ids:
        thread = await client.threads.get(tid)
        state = await client.threads.get_state(tid)
        history = await client.threads.get_history(tid, limit=100)
        runs = await client.runs.list(tid, limit=100)
        threads.append(
            {
                "thread": {k: thread[k] for k in ("thread_id", "metadata", "status", "values")},
                "interrupts": sorted(
                    (i["id"], repr(i["value"]))
                    for per_task in thread["interrupts"].values()
                    for i in per_task
                ),
                "state": {
                    "values": state["values"],
                    "next": list(state["next"]),
                    "checkpoint_id": state["checkpoint"]["checkpoint_id"],
                    "interrupts": [i["value"] for t in state["tasks"] for i in t["interrupts"]],
                },
                "history": [
                    (s["checkpoint"]["checkpoint_id"], as_dict(s["metadata"]).get("step"), s["values"])
                    for s in history
                ],
                "runs": [(r["run_id"], r["status"]) for r in runs],
            }
        )
    assistant = await client.assistants.get(assistant_id)
    item = await client.store.get_item(["restart", marker], "item")
    return {
        "threads": threads,
        "by_metadata": sorted(
            t["thread_id"] for t in await client.threads.search(metadata={"suite": marker})
        ),
        "assistant": (assistant["version"], assistant["name"], assistant["metadata"]),
        "versions": [v["version"] for v in await client.assistants.get_versions(assistant_id)],
        "item": item["value"],
    }


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_threads_state_history_and_runs_survive_a_restart(server: Server, kill: bool) -> None:
    marker = unique()
    async with server.client() as client:
        done_thread = (await client.threads.create(metadata={"suite": marker}))["thread_id"]
        await client.runs.wait(done_thread, "counter", input={"count": 0})
        await client.runs.wait(done_thread, "counter", input={"count": 10})
        paused_thread = (await client.threads.create(metadata={"suite": marker}))["thread_id"]
        await client.runs.wait(paused_thread, "interrupting", input={"topic": "restart"})
        assistant = await client.assistants.create("counter", metadata={"suite": marker}, name="before")
        await client.assistants.update(assistant["assistant_id"], name="after")
        await client.store.put_item(["restart", marker], "item", {"kept": True})
        before = await _snapshot(client, [done_thread, paused_thread], assistant["assistant_id"], marker)

    graceful = server.restart(kill=kill)

    if not kill:
        assert graceful, "graphrun did not exit after SIGTERM with nothing running"
    async with server.client() as client:
        after = await _snapshot(client, [done_thread, paused_thread], assistant["assistant_id"], marker)
        assert after == before
        assert before["threads"][1]["thread"]["status"] == "interrupted"  # the snapshot is not vacuous

        # And the threads carry on where they were.
        resumed = await client.runs.wait(paused_thread, "interrupting", command={"resume": "yes"})
        assert resumed == {"topic": "restart", "prepared": True, "answer": "yes"}
        again = await client.runs.wait(done_thread, "counter", input={"count": 100})
        assert again == {"count": 102, "trail": ["a", "b", "a", "b", "a", "b"]}


def _executions(log: Path) -> tuple[Counter[int], Counter[int]]:
    """How many times each step index started and ended, from the `slow` graph's log file."""
    starts: Counter[int] = Counter()
    ends: Counter[int] = Counter()
    for line in log.read_text(encoding="utf-8").splitlines():
        event, index = line.split()
        (starts if event == "start" else ends)[int(index)] += 1
    return starts, ends


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "sigterm"])
async def test_running_run_resumes_from_its_last_checkpoint(
    server: Server, tmp_path: Path, kill: bool
) -> None:
    log = tmp_path / "slow.log"
    async with server.client() as client:
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(
            thread_id, "slow", input={"delay": SLOW_DELAY_S, "steps": SLOW_STEPS, "log": str(log)}
        )
        checkpointed = await slow_steps_done(client, thread_id, at_least=2)
        assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "running"

    graceful = server.restart(kill=kill)

    if not kill:
        # SIGTERM drains: the run finishes within the grace period or goes back to pending at a step boundary.
        assert graceful, "graphrun did not exit within the SIGTERM grace period"
    async with server.client() as client:
        out = as_dict(await client.runs.join(thread_id, run["run_id"]))
        assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
        assert out["done"] == list(range(SLOW_STEPS))  # every step exactly once in the state
        assert as_dict((await client.threads.get_state(thread_id))["values"])["done"] == list(
            range(SLOW_STEPS)
        )
        assert (await client.threads.get(thread_id))["status"] == "idle"

    starts, ends = _executions(log)
    for index in checkpointed:
        assert starts[index] == 1, f"step {index} was checkpointed before the restart but ran again: {starts}"
    for index in range(SLOW_STEPS):
        assert ends[index] >= 1, f"step {index} never completed: {ends}"
    assert set(starts) == set(range(SLOW_STEPS))


async def test_pending_run_behind_a_running_one_completes_after_sigkill(
    server: Server, tmp_path: Path
) -> None:
    log = tmp_path / "slow.log"
    async with server.client() as client:
        thread_id = (await client.threads.create())["thread_id"]
        first = await client.runs.create(
            thread_id, "slow", input={"delay": SLOW_DELAY_S, "steps": 4, "log": str(log)}
        )
        second = await client.runs.create(
            thread_id, "slow", input={"delay": 0.1, "steps": 6, "log": str(log)}
        )
        checkpointed = await slow_steps_done(client, thread_id, at_least=1)
        assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "pending"

    server.restart(kill=True)

    async with server.client() as client:
        out = as_dict(await client.runs.join(thread_id, second["run_id"]))
        assert out["done"] == list(range(6))
        assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "success"
        assert (await client.runs.get(thread_id, second["run_id"]))["status"] == "success"

    starts, ends = _executions(log)
    for index in checkpointed:
        assert starts[index] == 1, f"step {index} was checkpointed before the kill but ran again: {starts}"
    assert set(ends) == set(range(6))
    # The queued run started only after the first had finished all four of its steps.
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines.index("start 4") > max(i for i, line in enumerate(lines) if line == "end 3")


async def test_sigterm_answers_open_waits_with_503_and_ends_open_streams(server: Server) -> None:
    async with server.client() as client:
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread_id, "slow", input={"delay": 0.5, "steps": 12})
    path = f"/threads/{thread_id}/runs/{run['run_id']}"

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def stream_lines() -> list[str]:
            async with http.stream("GET", f"{path}/stream") as response:
                return [line async for line in response.aiter_lines()]

        join = asyncio.create_task(http.get(f"{path}/join"))
        stream = asyncio.create_task(stream_lines())
        await asyncio.sleep(1.0)  # both requests are open and waiting on the run

        graceful = await asyncio.to_thread(server.stop)
        joined, lines = await join, await stream

    assert graceful
    assert joined.status_code == 503
    assert joined.headers["retry-after"] == "1"
    assert "join it again" in joined.json()["detail"]
    assert not any(line.startswith("event: error") for line in lines)
    server.start()  # the run was drained back to pending: it finishes on the new process
    async with server.client() as client:
        out = as_dict(await client.runs.join(thread_id, run["run_id"]))
    assert out["done"] == list(range(12))
