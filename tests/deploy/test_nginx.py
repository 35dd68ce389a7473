"""The compose topology's processes, started directly (2 ``graphrun api``, 2 ``graphrun worker``, one
PostgreSQL database, one Redis database) behind a real nginx running the shipped configuration: streams
pass through it event by event, ``Last-Event-ID`` resumes through it on the other API, and a rolling
restart of every process under load loses no run and duplicates no message."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.deploy._load import Load, sse
from tests.deploy._nginx import Nginx, NginxMissing
from tests.harness.cluster import CONFIG, Cluster
from tests.harness.ports import free_port
from tests.harness.targets import production
from tests.production._chat import chat_input

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(300)]


@dataclass
class Topology:
    cluster: Cluster
    nginx: Nginx

    def logs(self) -> str:
        return self.cluster.logs() + "\n" + self.nginx.logs()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    base = tmp_path_factory.mktemp("deploy")
    with production(base, CONFIG, name="deploy", apis=2, workers=2) as deployment:
        cluster = deployment.cluster
        try:
            nginx = Nginx(free_port(), [f"127.0.0.1:{api.port}" for api in cluster.apis], base / "nginx")
        except NginxMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        nginx.start()
        try:
            yield Topology(cluster, nginx)
        finally:
            nginx.stop()


async def test_a_stream_arrives_through_nginx_event_by_event(topology: Topology) -> None:
    async with httpx.AsyncClient(base_url=topology.nginx.url, timeout=60) as http:
        thread = (await http.post("/threads", json={})).json()
        body = {"assistant_id": "chat", "input": chat_input("hi", 4, 0.5), "stream_mode": "updates"}
        async with http.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as response:
            assert response.status_code == 200
            arrivals = [t async for t, event, _, _ in sse(response) if event == "updates"]
    assert len(arrivals) == 4
    # The steps are 0.5 s apart at the source: buffered, they would all arrive together at the end.
    assert arrivals[-1] - arrivals[0] >= 1.0, (
        f"arrival gaps {[b - a for a, b in itertools.pairwise(arrivals)]}"
    )


async def test_a_thread_stream_over_a_websocket_passes_through_nginx(topology: Topology) -> None:
    """The SDK's WebSocket transport through the shipped config (its Upgrade and Connection headers):
    the run's events arrive over the socket as they happen, to the root's end."""
    seen: list[dict[str, Any]] = []

    async def read(events: Any) -> None:
        async for frame in events:
            seen.append(dict(frame))
            data = frame.get("params", {}).get("data") or {}
            if frame.get("method") == "lifecycle" and data.get("event") in ("completed", "failed"):
                return

    async with (
        get_client(url=topology.nginx.url, api_key=None, timeout=60.0) as client,
        client.threads.stream(assistant_id="chat", transport="websocket") as thread,
    ):
        await thread.run.start(input=chat_input("over a socket", 3, 0.3))
        await asyncio.wait_for(read(thread.events), 60)
    phases = [
        f["params"]["data"]["event"]
        for f in seen
        if f.get("method") == "lifecycle" and not f["params"]["namespace"]
    ]
    assert phases == ["running", "completed"]
    assert sum(1 for f in seen if f.get("method") == "values") >= 3, "each step's values came through"


async def test_last_event_id_resumes_through_nginx_on_the_other_api(topology: Topology) -> None:
    cluster = topology.cluster
    async with httpx.AsyncClient(base_url=topology.nginx.url, timeout=60) as http:
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        body = {
            "assistant_id": "chat",
            "input": chat_input("resume", 6, 0.4),
            "stream_mode": "updates",
            "stream_resumable": True,
        }
        first: list[Any] = []
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
            run_path = response.headers["content-location"]
            async for _, event, data, event_id in sse(response):
                if event == "updates":
                    first.append((event_id, data))
                    if len(first) == 2:
                        break
        # Take one API away: whichever served the stream, nginx can only send the resume to the other.
        stopped = cluster.apis[0]
        stopped.signal(signal.SIGTERM)
        assert stopped.wait_exit(30) is not None
        try:
            rest: list[Any] = []
            headers = {"Last-Event-ID": first[-1][0]}
            async with http.stream("GET", f"{run_path}/stream", headers=headers) as response:
                assert response.status_code == 200
                async for _, event, data, event_id in sse(response):
                    if event == "updates":
                        rest.append((event_id, data))
        finally:
            cluster.ensure_running()
    steps = [next(iter(data)) for _, data in first + rest]
    assert steps == ["step"] * 6, "every step once, none twice, across the two connections"
    ids = [event_id for event_id, _ in first + rest]
    assert len(set(ids)) == len(ids)


async def test_a_rolling_restart_loses_no_run_and_duplicates_no_message(
    topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = topology.cluster
    load = Load(topology.nginx.url)
    clients = [asyncio.create_task(load.client_loop(n)) for n in range(8)]
    started = time.monotonic()
    restarts = 0
    try:
        await asyncio.sleep(2)
        for proc in [*cluster.apis, *cluster.workers]:
            proc.signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait_exit, 60)
            assert code == 0, f"{proc.name} exited with {code} on SIGTERM\n{proc.logs()}"
            await asyncio.to_thread(cluster.ensure_running)
            restarts += 1
            await asyncio.sleep(1)
        await asyncio.sleep(2)
    finally:
        await load.finish(clients)
    elapsed = time.monotonic() - started
    runs_seen = await load.check_all_succeeded()
    assert len(load.done) >= 20, "enough load to span the restarts"
    with capsys.disabled():
        print(
            f"\nrolling restart: {restarts} processes restarted one by one in {elapsed:.1f}s; "
            f"{len(load.done)} runs through nginx, {runs_seen} recorded, all success, no message twice; "
            f"{load.retries} client retries (502/503/cut connections)"
        )
