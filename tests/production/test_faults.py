"""Production mode when what it depends on fails: PostgreSQL unreachable at start, PostgreSQL stopped during
traffic, Redis stopped during traffic.

The outages use servers of the test's own (``initdb``/``pg_ctl``, ``redis-server``) on free loopback ports,
stopped and started again on the same port; the test is skipped, saying why, where those binaries are
missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx
import pytest
from langgraph_sdk.schema import Run, StreamPart

from tests.harness.cluster import (
    BASE_ENV,
    CONFIG,
    TEST_REDIS_URI,
    Cluster,
    LocalPostgres,
    LocalRedis,
    Procs,
    graphrun_argv,
    production_env,
)
from tests.harness.ports import free_port
from tests.harness.sdk import sse_events
from tests.harness.waiting import PROCESSES, eventually
from tests.production._chat import chat_input, check_chat_messages, step_messages

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(600)]

FINISHED = ("success", "error", "timeout", "interrupted")
LEASE_S = float(BASE_ENV["GRAPHRUN_LEASE_S"])


async def _all_ended(cluster: Cluster, runs: list[tuple[str, str]], *, timeout_s: float = 180.0) -> list[Run]:
    async with cluster.client(0) as client:

        async def look() -> list[Run]:
            return list(await asyncio.gather(*(client.runs.get(t, r) for t, r in runs)))

        return await eventually(
            look,
            lambda rs: all(r["status"] in FINISHED for r in rs),
            timeout_s=timeout_s,
            interval_s=0.5,
            what=f"{len(runs)} runs to end",
        )


async def _check_threads(cluster: Cluster, runs: list[tuple[str, str]], texts: list[str], steps: int) -> None:
    """Every run succeeded; every thread holds its messages exactly once."""
    final = await _all_ended(cluster, runs)
    assert [r["status"] for r in final] == ["success"] * len(runs), [
        (r["run_id"], r["status"]) for r in final
    ]
    async with cluster.client(0) as client:
        for (thread_id, _), text in zip(runs, texts, strict=True):
            check_chat_messages((await client.threads.get_state(thread_id))["values"], text, steps)


async def _start_runs(
    cluster: Cluster, texts: list[str], steps: int, delay: float, api: int = 0
) -> list[tuple[str, str]]:
    """One run of ``chat`` per text, each on a new thread, through API ``api``; waits until each has
    checkpointed a first step."""
    runs: list[tuple[str, str]] = []
    async with cluster.client(api) as client:
        for text in texts:
            thread_id = (await client.threads.create())["thread_id"]
            run = await client.runs.create(thread_id, "chat", input=chat_input(text, steps, delay))
            runs.append((thread_id, run["run_id"]))
        for thread_id, _ in runs:

            async def first_step(t: str = thread_id) -> list[dict[str, Any]]:
                return step_messages((await client.threads.get_state(t))["values"])

            await eventually(first_step, lambda done: len(done) >= 1, what="a first step", **PROCESSES)
    return runs


# ---------------------------------------------------------------- PostgreSQL unreachable at start


@pytest.mark.parametrize("command", ["api", "worker", "migrate"])
def test_a_process_whose_postgresql_is_unreachable_exits_non_zero_saying_so(
    procs: Procs, command: str
) -> None:
    """``graphrun api|worker|migrate`` with a DATABASE_URI where nothing listens gives up after its start-up
    wait and exits non-zero, with one line on stderr that names PostgreSQL and where it was looked for (no
    traceback)."""
    nobody = free_port()
    env = production_env(f"postgresql://postgres@127.0.0.1:{nobody}/graphrun", TEST_REDIS_URI)
    proc = procs.add(
        command, graphrun_argv(command, CONFIG, port=free_port() if command == "api" else None), env
    )
    proc.start()
    code = proc.wait_exit(120.0)
    assert code is not None, f"graphrun {command} still runs without its database"
    assert code != 0
    stderr = proc.output("stderr")
    assert "PostgreSQL" in stderr, stderr
    assert f"port={nobody}" in stderr or f":{nobody}" in stderr, stderr
    assert "Traceback" not in stderr, stderr


# ---------------------------------------------------------------- PostgreSQL stopped during traffic


async def test_postgresql_stopped_during_traffic_answers_503_and_loses_no_run(
    redis_uri: str, local_postgres: LocalPostgres, procs: Procs
) -> None:
    """One API and one worker on a PostgreSQL of the test's own; runs are executing when PostgreSQL stops.
    Meanwhile ``/ready`` answers 503 naming the database, and API requests answer 503 with
    ``Retry-After`` (never 500). When PostgreSQL is back, ``/ready`` answers 200 and every run created
    before the outage ends ``success`` with each step's message exactly once."""
    steps, delay = 10, 0.5
    cluster = Cluster(procs, production_env(local_postgres.uri, redis_uri), CONFIG)
    cluster.migrate()
    api = cluster.add_api()
    cluster.add_worker()
    cluster.ensure_running()
    texts = [f"outage {i}" for i in range(5)]
    runs = await _start_runs(cluster, texts, steps, delay)
    thread_id, run_id = runs[0]

    await asyncio.to_thread(local_postgres.stop)
    # Generous: a request may wait for the pool's own timeout before it answers.
    async with httpx.AsyncClient(base_url=api.url, timeout=180.0) as http:
        ready = await eventually(
            lambda: http.get("/ready"), lambda r: r.status_code == 503, what="/ready to fail", **PROCESSES
        )
        assert "postgres" in ready.text.lower(), ready.text
        # An outage longer than a lease: the worker can renew none of its leases meanwhile.
        await asyncio.sleep(2 * LEASE_S)
        requests: list[tuple[str, str, Any]] = [
            ("GET", f"/threads/{thread_id}", None),
            ("GET", f"/threads/{thread_id}/runs/{run_id}", None),
            ("GET", f"/threads/{thread_id}/state", None),
            ("POST", "/threads", {}),
            ("POST", "/threads/search", {"limit": 5}),
            ("POST", "/runs/wait", {"assistant_id": "chat", "input": chat_input("lost?", 1, 0.0)}),
        ]
        answers = await asyncio.gather(*(http.request(m, path, json=body) for m, path, body in requests))
        for (method, path, _), r in zip(requests, answers, strict=True):
            assert r.status_code == 503, f"{method} {path} while PostgreSQL is down: {r.status_code} {r.text}"
            assert r.headers.get("retry-after"), f"{method} {path}: 503 without Retry-After"

        await asyncio.to_thread(local_postgres.start)
        await eventually(
            lambda: http.get("/ready"),
            lambda r: r.status_code == 200,
            timeout_s=120.0,
            what="/ready once PostgreSQL is back",
            interval_s=PROCESSES["interval_s"],
        )
    await _check_threads(cluster, runs, texts, steps)
    assert all(p.alive for p in cluster.apis + cluster.workers), "a process died during the outage"


# ---------------------------------------------------------------- Redis stopped during traffic


async def _read_stream(http: httpx.AsyncClient, url: str, headers: dict[str, str], lines: list[str]) -> None:
    """Read an SSE response to its end into ``lines``."""
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            lines.append(line)


async def test_redis_stopped_during_traffic_streams_fall_back_and_no_run_is_lost(
    database_uri: str, procs: Procs, local_redis: LocalRedis
) -> None:
    """2 APIs and a worker on a Redis of the test's own; runs execute and streams are open when Redis is
    killed. Runs can still be created; streams opened before and during the outage end when their runs
    end (the API falls back to reading the run's row), without an error event; every run ends ``success``
    with its messages exactly once. When Redis is back (empty), streams carry events again: a stream
    started on API A is replayed whole on API B."""
    steps, delay = 10, 0.5
    cluster = Cluster(procs, production_env(database_uri, local_redis.uri), CONFIG)
    cluster.migrate()
    cluster.add_api()
    cluster.add_api()
    cluster.add_worker()
    cluster.ensure_running()
    texts = [f"before {i}" for i in range(4)]
    runs = await _start_runs(cluster, texts, steps, delay)

    async with httpx.AsyncClient(timeout=60.0) as http, asyncio.TaskGroup() as streams:
        lines: list[list[str]] = [[], []]
        thread_id, run_id = runs[0]
        url = f"{cluster.apis[1].url}/threads/{thread_id}/runs/{run_id}/stream"
        before = streams.create_task(_read_stream(http, url, {"Last-Event-ID": "-1"}, lines[0]))

        async def events_read() -> int:
            return len(sse_events(lines[0]))

        await eventually(events_read, lambda n: n >= 1, what="a first event on the open stream", **PROCESSES)

        local_redis.kill()
        thread_id, run_id = runs[1]
        url = f"{cluster.apis[0].url}/threads/{thread_id}/runs/{run_id}/stream"
        during = streams.create_task(_read_stream(http, url, {}, lines[1]))
        more = [f"during {i}" for i in range(2)]
        runs += await _start_runs(cluster, more, steps, delay, api=1)
        texts += more
        async with asyncio.timeout(180):  # a bound, so that a stream that never ends fails
            await asyncio.gather(before, during)
    for read in lines:
        events = [e[1] for e in sse_events(read)]
        assert "error" not in events, read
    await _check_threads(cluster, runs, texts, steps)

    local_redis.start()
    await _streams_carry_events_again(cluster, steps=3)
    assert all(p.alive for p in cluster.apis + cluster.workers), "a process died during the outage"


async def _streams_carry_events_again(cluster: Cluster, steps: int) -> None:
    """Once Redis is back, a resumable stream started on API A has every step, and API B replays it whole."""

    async def one_run() -> tuple[list[StreamPart], list[StreamPart]]:
        async with cluster.client(0) as a, cluster.client(1) as b:
            thread_id = (await a.threads.create())["thread_id"]
            stream = a.runs.stream(
                thread_id,
                "chat",
                input=chat_input("back", steps, 0.1),
                stream_mode="updates",
                stream_resumable=True,
            )
            async with contextlib.aclosing(cast(AsyncGenerator[StreamPart, None], stream)) as parts:
                seen = [p async for p in parts]
            if not seen:  # its events were written while the bus still counted Redis as down
                return seen, []
            run_id = seen[0].data["run_id"]
            replay = [p async for p in b.runs.join_stream(thread_id, run_id, last_event_id="-1")]
            return seen, replay

    def whole(result: tuple[list[StreamPart], list[StreamPart]]) -> bool:
        seen, replay = result
        updates = [p for p in seen if p.event == "updates"]
        return len(updates) == steps and [(p.id, p.data) for p in seen] == [(p.id, p.data) for p in replay]

    await eventually(one_run, whole, timeout_s=120.0, interval_s=1.0, what="streams through Redis again")
