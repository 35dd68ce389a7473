"""``graphrun.checkpointer``: the ``copy_thread``, ``delete_runs`` and ``keep_latest`` workarounds and
``store.ttl``.

Both workarounds run against the real SQLite saver of embedded mode, and the
``test_sqlite_saver_still_lacks_*`` tests show they are still needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, StateSnapshot, interrupt
from typing_extensions import TypedDict

from graphrun.checkpointer import copy_thread, delete_runs, keep_latest
from graphrun.savers import store_ttl


class Steps(TypedDict):
    steps: list[str]


def step(name: str) -> Any:
    def node(state: Steps) -> dict[str, Any]:
        return {"steps": [*state["steps"], name]}

    return node


def ask(state: Steps) -> dict[str, Any]:
    answer = interrupt("continue?")
    return {"steps": [*state["steps"], f"ask:{answer}"]}


def three_steps() -> StateGraph[Steps, None, Steps, Steps]:
    builder = StateGraph(Steps)
    for name in ("a", "b", "c"):
        builder.add_node(name, step(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder


def with_question() -> StateGraph[Steps, None, Steps, Steps]:
    builder = StateGraph(Steps)
    builder.add_node("a", step("a"))
    builder.add_node("ask", ask)
    builder.add_edge(START, "a")
    builder.add_edge("a", "ask")
    builder.add_edge("ask", END)
    return builder


def thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def checkpoint_id(config: RunnableConfig | None) -> str | None:
    return None if config is None else config["configurable"]["checkpoint_id"]


@pytest.fixture
async def saver(tmp_path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as opened:
        yield opened


async def history(graph: Any, thread_id: str) -> list[StateSnapshot]:
    return [s async for s in graph.aget_state_history(thread(thread_id))]


async def test_copy_thread_copies_every_checkpoint(saver: AsyncSqliteSaver) -> None:
    graph = three_steps().compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, thread("source"), durability="sync")

    await copy_thread(saver, "source", "copy")

    source, copy = await history(graph, "source"), await history(graph, "copy")
    assert len(source) == 5  # empty, input, then one per step: a, b, c
    assert len(copy) == len(source)
    assert [checkpoint_id(s.config) for s in copy] == [checkpoint_id(s.config) for s in source]
    assert [checkpoint_id(s.parent_config) for s in copy] == [checkpoint_id(s.parent_config) for s in source]
    assert [s.values for s in copy] == [s.values for s in source]
    assert [s.next for s in copy] == [s.next for s in source]
    assert [s.metadata for s in copy] == [s.metadata for s in source]
    assert copy[0].values == {"steps": ["a", "b", "c"]}
    assert {s.config["configurable"]["thread_id"] for s in copy} == {"copy"}


async def test_copy_keeps_pending_interrupts_and_is_independent(saver: AsyncSqliteSaver) -> None:
    graph = with_question().compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, thread("source"), durability="sync")

    await copy_thread(saver, "source", "copy")

    source_state = await graph.aget_state(thread("source"))
    copy_state = await graph.aget_state(thread("copy"))
    assert copy_state.interrupts == source_state.interrupts
    assert [i.value for i in copy_state.interrupts] == ["continue?"]

    resumed = await graph.ainvoke(Command(resume="yes"), thread("copy"), durability="sync")

    assert resumed == {"steps": ["a", "ask:yes"]}
    assert (await graph.aget_state(thread("source"))).next == ("ask",)


async def test_sqlite_saver_still_lacks_copy_thread(saver: AsyncSqliteSaver) -> None:
    """The reason for ``copy_thread``'s replay through ``aput``.

    When this fails, the library implemented it and the workaround can go.
    """
    graph = three_steps().compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, thread("source"), durability="sync")

    with pytest.raises(NotImplementedError):
        await saver.acopy_thread("source", "copy")


@pytest.fixture(params=["sqlite", "memory"])
async def any_saver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The SQLite saver (pruned in SQL) and the in-memory one (rebuilt through the public API)."""
    if request.param == "memory":
        yield InMemorySaver()
        return
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as opened:
        yield opened


async def test_keep_latest_keeps_only_the_head_and_its_state(any_saver: BaseCheckpointSaver[Any]) -> None:
    graph = three_steps().compile(checkpointer=any_saver)
    await graph.ainvoke({"steps": []}, thread("t"), durability="sync")
    await graph.ainvoke({"steps": ["x"]}, thread("other"), durability="sync")
    head = await graph.aget_state(thread("t"))

    await keep_latest(any_saver, "t")

    pruned = await history(graph, "t")
    assert [checkpoint_id(s.config) for s in pruned] == [checkpoint_id(head.config)]
    assert pruned[0].values == {"steps": ["a", "b", "c"]}
    assert pruned[0].parent_config is None
    assert len(await history(graph, "other")) == 5  # another thread is untouched


async def test_keep_latest_keeps_the_pending_interrupt(any_saver: BaseCheckpointSaver[Any]) -> None:
    graph = with_question().compile(checkpointer=any_saver)
    await graph.ainvoke({"steps": []}, thread("t"), durability="sync")

    await keep_latest(any_saver, "t")

    state = await graph.aget_state(thread("t"))
    assert [i.value for i in state.interrupts] == ["continue?"]
    resumed = await graph.ainvoke(Command(resume="yes"), thread("t"), durability="sync")
    assert resumed == {"steps": ["a", "ask:yes"]}


async def test_sqlite_and_memory_savers_still_lack_prune(any_saver: BaseCheckpointSaver[Any]) -> None:
    """The reason for ``keep_latest``'s own pruning. When this fails, the library implemented it."""
    with pytest.raises(NotImplementedError):
        await any_saver.aprune(["t"], strategy="keep_latest")


def run_config(thread_id: str, run_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}, "metadata": {"run_id": run_id}}


async def test_delete_runs_takes_the_thread_back_to_before_the_run(saver: AsyncSqliteSaver) -> None:
    graph = three_steps().compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, run_config("t", "run-1"), durability="sync")
    before = await history(graph, "t")
    await graph.ainvoke({"steps": ["again"]}, run_config("t", "run-2"), durability="sync")
    await graph.ainvoke({"steps": []}, run_config("other", "run-2"), durability="sync")

    await delete_runs(saver, "t", ["run-2"])

    after = await history(graph, "t")
    assert [checkpoint_id(s.config) for s in after] == [checkpoint_id(s.config) for s in before]
    assert (await graph.aget_state(thread("t"))).values == {"steps": ["a", "b", "c"]}
    assert {s.metadata["run_id"] for s in after if s.metadata} == {"run-1"}
    assert len(await history(graph, "other")) == 5  # only the given thread is touched


async def test_delete_runs_drops_the_writes_of_deleted_checkpoints(saver: AsyncSqliteSaver) -> None:
    builder = StateGraph(Steps)
    builder.add_node("a", step("a"))
    builder.add_node("ask", ask)
    builder.add_edge(START, "a")
    builder.add_edge("a", "ask")
    builder.add_edge("ask", END)
    graph = builder.compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, run_config("t", "run-1"), durability="sync")  # pending interrupt

    await delete_runs(saver, "t", ["run-1"])

    async with saver.conn.execute("SELECT COUNT(*) FROM writes WHERE thread_id = 't'") as cur:
        row = await cur.fetchone()
    assert row is not None
    assert row[0] == 0
    assert await history(graph, "t") == []


async def test_sqlite_saver_still_lacks_delete_for_runs(saver: AsyncSqliteSaver) -> None:
    """The reason ``delete_runs`` deletes from the saver's tables itself.

    When this fails, the library implemented it and the workaround can go.
    """
    graph = three_steps().compile(checkpointer=saver)
    await graph.ainvoke({"steps": []}, run_config("t", "run-1"), durability="sync")

    with pytest.raises(NotImplementedError):
        await saver.adelete_for_runs(["run-1"])


@pytest.mark.parametrize("config", [None, {}, {"ttl": None}], ids=["none", "empty", "ttl-none"])
def test_store_ttl_always_sweeps(config: dict[str, Any] | None) -> None:
    # Items put with a ttl must expire even when langgraph.json sets no ttl section.
    assert store_ttl(config) == {"sweep_interval_minutes": 1}


def test_store_ttl_keeps_what_the_config_says() -> None:
    ttl = {"refresh_on_read": True, "default_ttl": 60, "sweep_interval_minutes": 5}

    assert store_ttl({"ttl": ttl}) == ttl
