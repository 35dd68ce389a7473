"""``graphrun.resilience.once``: an effect made once per task, however often the task runs again."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict, cast

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.store.memory import InMemoryStore
from langgraph.types import Send

from graphrun.effects import NAMESPACE
from graphrun.resilience import aonce, effect_key, once


class State(TypedDict, total=False):
    sent: Annotated[list[str], operator.add]


def _recorder(calls: list[str], answer: str) -> Any:
    """An effect that notes each call in ``calls`` and answers ``answer``."""

    def effect() -> str:
        calls.append(answer)
        return answer

    return effect


class Crash(Exception):
    """The node failing after its effect, before its result was saved."""


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def _graph(node: Any, store: InMemoryStore | None) -> Any:
    return (
        StateGraph(State)
        .add_node("act", node)
        .add_edge("__start__", "act")
        .compile(checkpointer=InMemorySaver(), store=store)
    )


async def test_a_task_that_runs_again_gets_the_recorded_result_instead_of_acting_again() -> None:
    calls: list[str] = []
    crashes = [Crash()]

    async def act(state: State) -> State:
        async def send() -> str:
            calls.append("sent")
            return f"sent #{len(calls)}"

        result = await aonce("email", send)
        if crashes:
            raise crashes.pop()
        return {"sent": [result]}

    graph = _graph(act, InMemoryStore())
    with pytest.raises(Crash):
        await graph.ainvoke({}, _config("t"))
    result = await graph.ainvoke(None, _config("t"))  # the run resumed: the same task again

    assert calls == ["sent"]
    assert result["sent"] == ["sent #1"]


def test_each_run_and_each_name_is_an_effect_of_its_own() -> None:
    calls: list[str] = []

    def act(state: State) -> State:
        first = once("first", _recorder(calls, "first"))
        second = once("second", _recorder(calls, "second"))
        return {"sent": [first, second]}

    store = InMemoryStore()
    graph = _graph(act, store)
    graph.invoke({}, _config("t"))
    graph.invoke({}, _config("t"))  # a new run on the thread: a new task
    graph.invoke({}, _config("u"))

    assert calls == ["first", "second"] * 3
    assert len(store.search(NAMESPACE, limit=100)) == 6


def test_tasks_sent_in_parallel_are_told_apart() -> None:
    calls: list[str] = []

    def fan_out(state: State) -> State:
        return {}

    def act(item: dict[str, int]) -> State:
        return {"sent": [once("email", _recorder(calls, str(item["n"])))]}

    graph: Any = (
        StateGraph(State)
        .add_node("fan_out", fan_out)
        .add_node("act", cast(Any, act))
        .add_edge("__start__", "fan_out")
        .add_conditional_edges("fan_out", lambda s: [Send("act", {"n": 1}), Send("act", {"n": 2})])
        .compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    )
    result = graph.invoke({}, _config("t"))

    assert sorted(calls) == ["1", "2"]
    assert sorted(result["sent"]) == ["1", "2"]


def test_without_a_store_it_says_so() -> None:
    def act(state: State) -> State:
        return {"sent": [once("email", lambda: "sent")]}

    with pytest.raises(RuntimeError, match="compile the graph with store="):
        _graph(act, None).invoke({}, _config("t"))


def test_outside_a_graph_it_says_so() -> None:
    with pytest.raises(RuntimeError, match="inside a node or tool"):
        effect_key("email")
    with pytest.raises(RuntimeError, match="inside a node or tool"):
        once("email", lambda: "sent", store=InMemoryStore())


def test_a_result_that_is_not_json_is_refused_by_name() -> None:
    def act(state: State) -> State:
        once("email", lambda: object())
        return {}

    with pytest.raises(TypeError, match="once\\('email'\\): the effect's result must be JSON"):
        _graph(act, InMemoryStore()).invoke({}, _config("t"))


def test_the_key_is_the_same_for_the_same_task_and_differs_otherwise() -> None:
    base = {"thread_id": "t", "checkpoint_ns": "act:1", "checkpoint_map": {"": "c1"}}

    def key(name: str = "email", **changes: Any) -> str:
        return effect_key(name, {"configurable": {**base, **changes}})

    assert key() == key()
    others = {key("sms"), key(thread_id="u"), key(checkpoint_ns="act:2"), key(checkpoint_map={"": "c2"})}
    assert key() not in others
    assert len(others) == 4
