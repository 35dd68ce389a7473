"""Small deterministic graphs the acceptance tests serve. No network, no model.

Loaded by the server under test through ``langgraph.json``; the tests never import this module. Every graph
is compiled without a checkpointer: the server attaches its own. ``counter`` is given to the server as an
uncompiled ``StateGraph`` and ``factory`` as a function of the run's config, so that both forms are exercised.
"""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt

# --- echo: one node that answers the last human message -----------------------------------------------------


def _last_human_text(messages: list[AnyMessage]) -> str:
    for message in reversed(messages):
        if message.type == "human":
            return str(message.content)
    return ""


def reply(state: MessagesState) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"echo: {_last_human_text(state['messages'])}")]}


echo = StateGraph(MessagesState).add_node("reply", reply).add_edge(START, "reply").compile()


# --- counter: a -> b, each bumps `count` and leaves its name in `trail` (served uncompiled) -----------------


class CounterState(TypedDict, total=False):
    count: int
    trail: Annotated[list[str], operator.add]


def node_a(state: CounterState) -> CounterState:
    return {"count": state.get("count", 0) + 1, "trail": ["a"]}


def node_b(state: CounterState) -> CounterState:
    return {"count": state.get("count", 0) + 1, "trail": ["b"]}


counter = (
    StateGraph(CounterState)
    .add_node("a", node_a)
    .add_node("b", node_b)
    .add_edge(START, "a")
    .add_edge("a", "b")
    .add_edge("b", END)
)


# --- interrupting: `prepare`, then `ask` waits for a human answer and stores it -----------------------------


class ApprovalState(TypedDict, total=False):
    topic: str
    prepared: bool
    answer: str


def prepare(state: ApprovalState) -> ApprovalState:
    return {"prepared": True}


def ask(state: ApprovalState) -> ApprovalState:
    answer = interrupt({"question": "approve?"})
    return {"answer": answer}


interrupting = (
    StateGraph(ApprovalState)
    .add_node("prepare", prepare)
    .add_node("ask", ask)
    .add_edge(START, "prepare")
    .add_edge("prepare", "ask")
    .add_edge("ask", END)
    .compile()
)


# --- failing: one node that raises --------------------------------------------------------------------------


class FailingState(TypedDict, total=False):
    attempt: int


def explode(state: FailingState) -> FailingState:
    raise ValueError("boom")


failing = StateGraph(FailingState).add_node("explode", explode).add_edge(START, "explode").compile()


# --- slow: `steps` supersteps of `delay` seconds each -------------------------------------------------------
# Each step appends its index to `done`; a step's index is the number of steps the state already holds.
# When `log` names a file, every step also writes "start <i>" before sleeping and "end <i>" after, outside the
# graph's state: the only way to tell afterwards which steps executed, and how many times.


class SlowState(TypedDict, total=False):
    delay: float
    steps: int
    log: str
    done: Annotated[list[int], operator.add]


def _append_line(path: str, line: str) -> None:
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(line + "\n")


async def step(state: SlowState) -> SlowState:
    index = len(state.get("done", []))
    log = state.get("log")
    if log:
        await asyncio.to_thread(_append_line, log, f"start {index}")
    await asyncio.sleep(state.get("delay", 0.0))
    if log:
        await asyncio.to_thread(_append_line, log, f"end {index}")
    return {"done": [index]}


def more_steps(state: SlowState) -> Literal["step", "__end__"]:
    return "step" if len(state.get("done", [])) < state.get("steps", 1) else "__end__"


slow = (
    StateGraph(SlowState)
    .add_node("step", step)
    .add_edge(START, "step")
    .add_conditional_edges("step", more_steps)
    .compile()
)


# --- factory: built per run from its config (configurable `prefix`, default "hello") ------------------------


class GreetState(TypedDict, total=False):
    name: str
    greeting: str


def make_graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    prefix = str(config.get("configurable", {}).get("prefix", "hello"))

    def greet(state: GreetState) -> GreetState:
        return {"greeting": f"{prefix}, {state.get('name', 'nobody')}"}

    return StateGraph(GreetState).add_node("greet", greet).add_edge(START, "greet").compile()


# --- nested: the counter graph as a subgraph node `inner`, then `after` (for subgraphs and xray) ------------


def after(state: CounterState) -> CounterState:
    return {"trail": ["after"]}


nested = (
    StateGraph(CounterState)
    .add_node("inner", counter.compile())
    .add_node("after", after)
    .add_edge(START, "inner")
    .add_edge("inner", "after")
    .add_edge("after", END)
    .compile()
)


# --- slow_factory: a factory that takes `configurable.build_delay` seconds to build its graph ---------------


async def make_slow_graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    await asyncio.sleep(float(config.get("configurable", {}).get("build_delay", 0)))
    return StateGraph(CounterState).add_node("a", node_a).add_edge(START, "a").compile()


# --- node_timeout: a node whose own call times out (an error of the node, not a run timeout) --------------


async def call_slow_service(state: FailingState) -> FailingState:
    await asyncio.wait_for(asyncio.sleep(5), timeout=0.05)
    return {}


node_timeout = StateGraph(FailingState).add_node("call", call_slow_service).add_edge(START, "call").compile()
