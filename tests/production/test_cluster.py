"""A production deployment as it runs: 2 ``graphrun api`` and 2 ``graphrun worker`` processes on one
PostgreSQL database and one Redis, driven with the official SDK.

What crosses processes: a stream started on one API is resumed on the other with ``Last-Event-ID``; a
cancel sent to one API stops a run on whichever worker holds it. What survives processes: 100 runs in
flight while a worker is SIGKILLed or SIGTERMed all succeed, each thread's messages exactly once; an API
stopped with SIGTERM ends its streams cleanly while their runs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Run, StreamPart

from tests.harness.cluster import BASE_ENV, Cluster
from tests.harness.sdk import sse_events
from tests.harness.waiting import PROCESSES, eventually
from tests.production._chat import chat_input, check_chat_messages, step_messages

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(600)]

FINISHED = ("success", "error", "timeout", "interrupted")


async def _steps_done(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    return step_messages((await client.threads.get_state(thread_id))["values"])


async def _first_steps(client: LangGraphClient, thread_id: str, count: int) -> list[dict[str, Any]]:
    """Wait until the run on the thread has checkpointed ``count`` steps; return its step messages."""
    return await eventually(
        lambda: _steps_done(client, thread_id),
        lambda done: len(done) >= count,
        what=f"{count} steps checkpointed on thread {thread_id}",
        **PROCESSES,
    )


async def _ended(client: LangGraphClient, thread_id: str, run_id: str) -> Run:
    return await eventually(
        lambda: client.runs.get(thread_id, run_id),
        lambda r: r["status"] in FINISHED,
        what=f"run {run_id} to end",
        **PROCESSES,
    )


def _pid(message: dict[str, Any]) -> int:
    return int(message["response_metadata"]["pid"])


async def test_a_stream_dropped_on_api_a_resumes_on_api_b_without_loss_or_duplicates(
    cluster: Cluster,
) -> None:
    """The client reads part of a resumable stream from API A and drops it; it resumes on API B with the
    last event id it had. What it read on A then on B is exactly the run's whole stream, as B replays it
    from the start (``Last-Event-ID: -1``): no event lost, none twice."""
    steps = 6
    async with cluster.client(0) as a, cluster.client(1) as b:
        thread_id = (await a.threads.create())["thread_id"]
        first: list[StreamPart] = []
        stream = a.runs.stream(
            thread_id,
            "chat",
            input=chat_input("resume me", steps, 0.3),
            stream_mode=["values", "updates"],
            stream_resumable=True,
        )
        async with contextlib.aclosing(cast(AsyncGenerator[StreamPart, None], stream)) as parts:
            async for part in parts:
                first.append(part)
                if sum(p.event == "updates" for p in first) == 2:
                    break  # the connection to A drops after two steps
        assert first[0].event == "metadata"
        run_id = first[0].data["run_id"]
        last_id = first[-1].id
        assert last_id, f"a resumable stream sends event ids; got {first[-1]!r}"

        rest = [p async for p in b.runs.join_stream(thread_id, run_id, last_event_id=last_id)]
        replay = [p async for p in b.runs.join_stream(thread_id, run_id, last_event_id="-1")]
        state = await b.threads.get_state(thread_id)

    def seen(parts: list[StreamPart]) -> list[tuple[str | None, str, Any]]:
        return [(p.id, p.event, p.data) for p in parts]

    assert any(p.event == "updates" for p in rest), "the stream was dropped after the run ended"
    assert seen(first + rest) == seen(replay)
    assert [p.event for p in replay].count("updates") == steps
    ids = [p.id for p in replay]
    assert None not in ids, f"event ids: {ids}"
    assert len(set(ids)) == len(ids), f"event ids: {ids}"
    check_chat_messages(state["values"], "resume me", steps)


async def test_a_cancel_sent_to_api_b_stops_runs_on_either_worker(cluster: Cluster) -> None:
    """Long runs are started on API A until each worker holds at least one; each is cancelled through
    API B. Every run ends ``interrupted`` with the steps it had completed kept on its thread, and goes no
    further."""
    steps, delay = 1000, 0.5
    workers = set(cluster.worker_pids)
    most = int(BASE_ENV["GRAPHRUN_WORKER_CONCURRENCY"]) + 1  # more than one worker may hold
    async with cluster.client(0) as a, cluster.client(1) as b:
        runs: list[tuple[str, str]] = []
        holder: dict[str, int] = {}
        while set(holder.values()) != workers:
            assert len(runs) < most, f"{len(runs)} runs and still not one on each worker: {holder}"
            for _ in range(2):
                thread_id = (await a.threads.create())["thread_id"]
                run = await a.runs.create(thread_id, "chat", input=chat_input("cancel me", steps, delay))
                runs.append((thread_id, run["run_id"]))
            for thread_id, run_id in runs[-2:]:
                holder[run_id] = _pid((await _first_steps(a, thread_id, 1))[-1])
        assert set(holder.values()) <= workers

        kept: dict[str, int] = {}
        for thread_id, run_id in runs:
            before = len(await _steps_done(b, thread_id))
            await b.runs.cancel(thread_id, run_id)
            ended = await _ended(b, thread_id, run_id)
            assert ended["status"] == "interrupted", ended
            done = await _steps_done(b, thread_id)
            assert before <= len(done) < steps
            assert [m["content"] for m in done] == [f"step {i}" for i in range(len(done))]
            kept[thread_id] = len(done)

        for thread_id, count in kept.items():  # nothing ran on after its run was reported interrupted
            assert len(await _steps_done(a, thread_id)) == count


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_100_runs_in_flight_all_succeed_when_a_worker_is_killed_or_stopped(
    cluster: Cluster, sig: signal.Signals
) -> None:
    """100 runs are started (half on each API). Once one worker holds runs half done, it is SIGKILLed (the
    other takes its runs over when their leases expire) or SIGTERMed (it stops claiming, lets runs finish
    for its grace period, then hands the rest back at a step boundary and exits 0). All 100 runs end
    ``success``; each thread holds its human message and each step's message exactly once; every run the
    stopped worker held with more work left than it could finish was completed by the other worker."""
    runs, steps, delay = 100, 12, 0.5
    # A run the stopped worker holds with this many steps left when the signal is sent cannot finish there:
    # a SIGKILL stops it at once; SIGTERM leaves 2 s of grace (GRAPHRUN_SHUTDOWN_GRACE_S, at most 4 steps of
    # 0.5 s) and then lets the step in flight end, so at most 5 more steps run on it.
    left_at_least = 2 if sig is signal.SIGKILL else 6
    async with cluster.client(0) as a, cluster.client(1) as b:
        threads = [t["thread_id"] for t in await asyncio.gather(*(a.threads.create() for _ in range(runs)))]
        created = await asyncio.gather(
            *(
                (a if i % 2 else b).runs.create(t, "chat", input=chat_input(f"run {i}", steps, delay))
                for i, t in enumerate(threads)
            )
        )
        run_ids = [r["run_id"] for r in created]

        async def look() -> list[list[dict[str, Any]]]:
            return list(await asyncio.gather(*(_steps_done(a, t) for t in threads)))

        def started(progress: list[list[dict[str, Any]]]) -> dict[int, list[int]]:
            """Per worker pid: the runs (indexes) it holds with a step or more done and half still to go."""
            held: dict[int, list[int]] = {}
            for i, done in enumerate(progress):
                if done and len(done) <= steps // 2:
                    held.setdefault(_pid(done[-1]), []).append(i)
            return held

        progress = await eventually(
            look,
            lambda p: any(len(v) >= 3 for v in started(p).values()),
            timeout_s=PROCESSES["timeout_s"],
            interval_s=0.3,
            what="a worker holding runs half done",
        )
        victim_pid = max(started(progress).items(), key=lambda kv: len(kv[1]))[0]
        victim = cluster.worker_pids[victim_pid]
        victim.signal(sig)
        # Which runs had work left when the signal went, read after it was sent: a loaded machine can only
        # make this look later, showing more steps done, so it never picks a run that could have finished.
        after_signal = await look()
        interrupted = [
            i
            for i, done in enumerate(after_signal)
            if victim_pid in {_pid(m) for m in done} and steps - len(done) >= left_at_least
        ]
        assert interrupted, f"no run of worker {victim_pid} had {left_at_least} steps left at the signal"
        code = await asyncio.to_thread(victim.wait_exit, 120.0)
        if sig is signal.SIGTERM:
            assert code == 0, f"a worker stopped with SIGTERM exits 0 once drained, not {code}"
        else:
            assert code == -signal.SIGKILL

        async def statuses() -> list[Run]:
            return list(
                await asyncio.gather(*(a.runs.get(t, r) for t, r in zip(threads, run_ids, strict=True)))
            )

        final = await eventually(
            statuses,
            lambda rs: all(r["status"] in FINISHED for r in rs),
            timeout_s=300.0,
            interval_s=1.0,
            what="all 100 runs to end",
        )
        not_ok = [(r["run_id"], r["status"]) for r in final if r["status"] != "success"]
        assert not not_ok, f"runs that did not succeed: {not_ok}"

        states = await asyncio.gather(*(b.threads.get_state(t) for t in threads))
        pids = [check_chat_messages(s["values"], f"run {i}", steps) for i, s in enumerate(states)]
    for i in interrupted:
        where = f"run {i} was half done on the stopped worker {victim_pid}; its steps ran on {pids[i]}"
        assert victim_pid in pids[i], where
        assert set(pids[i]) - {victim_pid}, where


async def test_an_api_stopped_with_sigterm_ends_its_streams_cleanly_and_the_run_goes_on(
    cluster: Cluster,
) -> None:
    """A run is streamed from API A; A gets SIGTERM mid-run. The open stream ends as a stream ends, without
    an error event or a broken connection; A stops accepting connections and exits 0; the run goes on on
    its worker and is joined on API B, complete."""
    steps, delay = 12, 0.5
    api_a = cluster.apis[0]
    body = {
        "assistant_id": "chat",
        "input": chat_input("keep going", steps, delay),
        "stream_mode": ["updates"],
    }
    lines: list[str] = []
    async with cluster.client(1) as b, httpx.AsyncClient(base_url=api_a.url, timeout=60.0) as http:
        thread_id = (await b.threads.create())["thread_id"]
        signalled = False
        async with (
            asyncio.timeout(120),  # a bound, far beyond the server's own, so that a hang fails
            http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response,
        ):
            assert response.status_code == 200
            run_id = response.headers["content-location"].rsplit("/", 1)[-1]
            async for line in response.aiter_lines():
                lines.append(line)
                if not signalled and line == "" and any(e[1] == "updates" for e in sse_events(lines)):
                    api_a.signal(signal.SIGTERM)
                    signalled = True
        events = [e[1] for e in sse_events(lines)]
        assert signalled, f"the stream ended before its first step: {events}"
        assert "error" not in events, lines
        assert events.count("updates") < steps, "the stream ran to the end of the run: SIGTERM came too late"

        async def try_a() -> str:
            try:
                async with httpx.AsyncClient(timeout=10.0) as fresh:
                    return str((await fresh.get(f"{api_a.url}/ok")).status_code)
            except httpx.TransportError as exc:
                return type(exc).__name__

        await eventually(
            try_a, lambda r: r in ("ConnectError", "503"), what="API A to stop accepting", **PROCESSES
        )
        code = await asyncio.to_thread(api_a.wait_exit, 120.0)
        assert code == 0, f"an API stopped with SIGTERM exits 0, not {code}"

        out = await b.runs.join(thread_id, run_id)
        run = await b.runs.get(thread_id, run_id)
    assert run["status"] == "success"
    check_chat_messages(out, "keep going", steps)
