"""Small deterministic graphs the acceptance tests serve. No network, no model.

Loaded by the server under test through ``langgraph.json``; the tests never import this module. Every graph
is compiled without a checkpointer: the server attaches its own. ``counter`` is given to the server as an
uncompiled ``StateGraph`` and ``factory`` as a function of the run's config, so that both forms are exercised.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from pydantic import BaseModel

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


# --- tokens: a chat model that streams its answer token by token ------------------------------------------
# The model is LangChain's fake chat model, a fake at the true edge (a remote provider). It answers
# "tok0 tok1 … tok<n-1>" where n is `configurable.tokens` (default 5), waiting `configurable.token_delay`
# seconds before each token. The node also reports progress through the custom stream writer.


async def talk(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    configurable = config.get("configurable", {})
    count = int(configurable.get("tokens", 5))
    delay = float(configurable.get("token_delay", 0.0))
    writer = get_stream_writer()
    writer({"progress": 0})
    model = _SlowFakeChatModel(
        messages=iter([AIMessage(content=" ".join(f"tok{i}" for i in range(count)))]), token_delay=delay
    )
    answer = await model.ainvoke(state["messages"], config)
    writer({"progress": 1})
    return {"messages": [answer]}


class _SlowFakeChatModel(GenericFakeChatModel):
    token_delay: float = 0.0

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in super()._astream(*args, **kwargs):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield chunk


tokens = StateGraph(MessagesState).add_node("talk", talk).add_edge(START, "talk").compile()


# --- approval: `review` asks for a decision that must match a schema (`interrupt(response_schema=…)`) -----


class Decision(BaseModel):
    approved: bool
    note: str = ""


class ReviewState(TypedDict, total=False):
    draft: str
    decision: dict[str, Any]
    published: bool


def review(state: ReviewState) -> ReviewState:
    decision = interrupt(
        {"question": "publish this draft?", "draft": state.get("draft", "")}, response_schema=Decision
    )
    return {"decision": decision.model_dump()}


def publish(state: ReviewState) -> ReviewState:
    return {"published": bool(state.get("decision", {}).get("approved"))}


approval = (
    StateGraph(ReviewState)
    .add_node("review", review)
    .add_node("publish", publish)
    .add_edge(START, "review")
    .add_edge("review", "publish")
    .add_edge("publish", END)
    .compile()
)


# --- two_questions: two parallel nodes interrupt at once (resume them by interrupt id) ---------------------


class AnswersState(TypedDict, total=False):
    answers: Annotated[list[str], operator.add]


def ask_left(state: AnswersState) -> AnswersState:
    return {"answers": [f"left={interrupt('left?')}"]}


def ask_right(state: AnswersState) -> AnswersState:
    return {"answers": [f"right={interrupt('right?')}"]}


two_questions = (
    StateGraph(AnswersState)
    .add_node("left", ask_left)
    .add_node("right", ask_right)
    .add_edge(START, "left")
    .add_edge(START, "right")
    .compile()
)
