"""``DELETE /threads/{id}`` while the thread's run finishes: the route, a real SQLite control store, a real
worker and graph, with the one interleaving that used to answer 404 made certain.

The route lists the thread's running runs, then cancels each. A run that ends between the two used to make
the cancel raise "already success: only pending or running runs can be cancelled", which the route let out
as a 404 although the thread was there to delete. Here the store's ``list_runs`` waits, once it has
answered, until the run it listed has finished, so the cancel always meets an ended run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.store.memory import InMemoryStore

from graphrun.api import create_app
from graphrun.api.deps import Services
from graphrun.config import GraphSpec
from graphrun.graphs import GraphRegistry, LoadedGraph
from graphrun.models import Run, RunRequest, new_id, system_assistant_id, utcnow
from graphrun.runner import Runner
from graphrun.settings import Settings
from graphrun.stores.base import NewRun, Page
from graphrun.stores.sqlite import SqliteStore
from graphrun.streams import LocalBus
from graphrun.types import Persistence
from graphrun.worker import Worker

pytestmark = pytest.mark.timeout(30)


class State(TypedDict, total=False):
    done: bool


class _RunEndsAfterListing(SqliteStore):
    """A real store whose ``list_runs`` of running runs returns only once those runs have finished."""

    def __init__(self, path: Path, bus: LocalBus) -> None:
        super().__init__(path)
        self.bus = bus

    async def list_runs(self, thread_id: str, status: str | None, page: Page) -> list[Run]:
        runs = await super().list_runs(thread_id, status, page)
        for run in runs:
            if run.status == "running":
                assert await self.bus.wait_done(run.run_id, 10), "the listed run never finished"
        return runs


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, _RunEndsAfterListing]]:
    async def step(state: State) -> State:
        await asyncio.sleep(0.3)
        return {"done": True}

    graph = StateGraph(State).add_node("step", step).add_edge(START, "step").compile()
    settings = Settings(data_dir=tmp_path, poll_interval_s=0.05)
    store = _RunEndsAfterListing(tmp_path / "control.sqlite", LocalBus())
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver, store:
        bus = store.bus
        registry = GraphRegistry(
            {"g": LoadedGraph(GraphSpec("g", None, "tests", "graph"), graph)},
            Persistence(checkpointer=saver, store=InMemoryStore()),
        )
        await store.ensure_system_assistant(system_assistant_id("g"), "g", None)
        svc = Services(settings, store, bus, registry)
        transport = httpx.ASGITransport(app=create_app(svc))
        async with (
            Worker(settings, store, bus, Runner(settings, store, bus, registry)),
            httpx.AsyncClient(transport=transport, base_url="http://graphrun") as http,
        ):
            yield http, store


async def test_a_thread_whose_run_ends_while_it_is_deleted_is_deleted(
    app: tuple[httpx.AsyncClient, _RunEndsAfterListing],
) -> None:
    http, store = app
    thread_id, run_id = new_id(), new_id()
    request: dict[str, Any] = {"done": False}
    await store.create_run(
        NewRun(
            run_id=run_id,
            thread_id=thread_id,
            assistant_id=system_assistant_id("g"),
            graph_id="g",
            metadata={},
            multitask_strategy="enqueue",
            request=RunRequest(input=request),
            available_at=utcnow() - timedelta(seconds=1),
            if_not_exists="create",
        )
    )
    store.bus.notify_new_run()
    for _ in range(200):
        if (await store.get_run(thread_id, run_id)).status == "running":
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the run never started")

    response = await http.delete(f"/threads/{thread_id}")

    assert response.status_code == 204, response.text
    assert (await http.get(f"/threads/{thread_id}")).status_code == 404
