"""Checkpoint writes fenced by the run's lease (``graphrun/fence.py``), on a real PostgreSQL: a worker whose
lease went stale renews it before writing, and one that lost it writes nothing."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import StateGraph
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from graphrun import errors, fence
from graphrun.savers import ConcurrentPostgresSaver
from tests.conformance._servers import pg_schema


class State(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]


def _graph(saver: ConcurrentPostgresSaver) -> Any:
    def step(state: State) -> State:
        return {"steps": ["done"]}

    return StateGraph(State).add_node("step", step).add_edge("__start__", "step").compile(checkpointer=saver)


class Renewals:
    """A lease's store side: counts renewals, and refuses them once the run was taken over."""

    def __init__(self) -> None:
        self.calls = 0
        self.lost = False

    async def renew(self) -> None:
        self.calls += 1
        if self.lost:
            raise errors.LeaseLost("Run r attempt 1 is no longer held")


async def _invoke_under(lease: fence.Lease, graph: Any, thread_id: str) -> Any:
    async def attempt() -> Any:
        fence.hold(lease)  # as the worker does in the run's task
        return await graph.ainvoke(
            {"steps": []}, {"configurable": {"thread_id": thread_id}}, durability="sync"
        )

    return await asyncio.create_task(attempt())


@pytest.fixture
async def saver() -> Any:
    async with pg_schema() as uri:
        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            uri, min_size=1, max_size=4, kwargs=kwargs, open=False
        )
        async with pool:
            saver = ConcurrentPostgresSaver(pool)
            await saver.setup()
            yield saver


async def test_a_fresh_lease_writes_without_asking(saver: ConcurrentPostgresSaver) -> None:
    renewals = Renewals()
    result = await _invoke_under(fence.Lease(renewals.renew, 30.0, 10.0), _graph(saver), "fresh")

    assert result["steps"] == ["done"]
    assert renewals.calls == 0


async def test_a_stale_lease_still_held_is_renewed_then_written(saver: ConcurrentPostgresSaver) -> None:
    renewals = Renewals()
    result = await _invoke_under(fence.Lease(renewals.renew, 1.0, 1.0), _graph(saver), "stale")

    assert result["steps"] == ["done"]
    assert renewals.calls >= 1


async def test_a_lost_lease_writes_nothing(saver: ConcurrentPostgresSaver) -> None:
    renewals = Renewals()
    renewals.lost = True
    graph = _graph(saver)

    with pytest.raises(errors.LeaseLost):
        await _invoke_under(fence.Lease(renewals.renew, 1.0, 1.0), graph, "lost")

    assert await saver.aget_tuple({"configurable": {"thread_id": "lost"}}) is None


async def test_outside_a_run_nothing_is_asked(saver: ConcurrentPostgresSaver) -> None:
    result = await _graph(saver).ainvoke({"steps": []}, {"configurable": {"thread_id": "api"}})

    assert result["steps"] == ["done"]
