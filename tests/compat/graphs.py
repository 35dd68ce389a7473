"""Graphs for the compatibility tests: a context schema with defaults, factories that take the server
runtime, and a run that takes a while."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from langgraph_sdk.runtime import ServerRuntime
from pydantic import BaseModel


@dataclass
class Ctx:
    """As the react-agent template's context: every field has a default."""

    model: str = "default-model"
    temperature: float = 0.5


class State(TypedDict, total=False):
    seconds: float
    seen: dict[str, Any]


def _report(state: State, runtime: Runtime[Ctx]) -> State:
    context = runtime.context
    return {"seen": {"type": type(context).__name__, **(asdict(context) if context is not None else {})}}


def _graph(node: Any, name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(State, context_schema=Ctx)
    builder.add_node("report", node)
    builder.set_entry_point("report")
    builder.set_finish_point("report")
    return builder.compile(name=name)


ctx = _graph(_report, "ctx")


def _runtime_node(runtime: ServerRuntime[Ctx]) -> Any:
    """A node reporting what the factory was told: why it was called and, for a run, the context."""
    execution = runtime.execution_runtime
    told = {
        "access_context": runtime.access_context,
        "has_store": runtime.store is not None,
        "context": execution.context if execution is not None else None,  # the run's context, as sent
    }

    def report(state: State, runtime: Runtime[Ctx]) -> State:
        return {"seen": told}

    return report


def make_with_runtime(config: RunnableConfig, runtime: ServerRuntime[Ctx]) -> Any:
    """The official server's two-argument factory: the config and the server runtime."""
    assert "configurable" in config, "a factory gets a whole config"
    if runtime.access_context != "threads.create_run":
        assert runtime.execution_runtime is None, "only a run's factory call carries a context"
    return _graph(_runtime_node(runtime), "runtime_factory")


def make_from_runtime(runtime: ServerRuntime[Ctx]) -> Any:
    return _graph(_runtime_node(runtime), "runtime_only")


def make_named_runtime(config, runtime):  # type: ignore[no-untyped-def]
    """Unannotated: graphrun tells the runtime by its name (the official server needs the annotation)."""
    return _graph(_runtime_node(runtime), "named_runtime")


async def _sleep(state: State) -> State:
    await asyncio.sleep(state.get("seconds", 0.0))
    return {"seen": {"slept": state.get("seconds", 0.0)}}


_sleepy = StateGraph(State)
_sleepy.add_node("sleep", _sleep)
_sleepy.set_entry_point("sleep")
_sleepy.set_finish_point("sleep")
sleepy = _sleepy.compile(name="sleepy")


# ---------------------------------------------------------------- for the thread-stream protocol


class Asked(TypedDict, total=False):
    draft: str
    answer: Any


def _draft(state: Asked) -> Asked:
    return {"draft": "a plan"}


def _ask(state: Asked) -> Asked:
    return {"answer": interrupt({"question": f"approve {state['draft']}?"})}


_asks = StateGraph(Asked)
_asks.add_node("draft", _draft)
_asks.add_node("ask", _ask)
_asks.add_edge(START, "draft")
_asks.add_edge("draft", "ask")
_asks.add_edge("ask", END)
asks = _asks.compile(name="asks")


async def _chat(state: MessagesState) -> dict[str, Any]:
    """A model that streams three tokens: the fake edge for a remote provider."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hello there world")]))
    return {"messages": [await model.ainvoke(state["messages"])]}


_chats = StateGraph(MessagesState)
_chats.add_node("chat", _chat)
_chats.add_edge(START, "chat")
_chats.add_edge("chat", END)
chats = _chats.compile(name="chats")


def _fail(state: State) -> State:
    raise ValueError("the node failed on purpose")


_fails = StateGraph(State)
_fails.add_node("fail", _fail)
_fails.add_edge(START, "fail")
fails = _fails.compile(name="fails")


# ---------------------------------------------------------------- an input schema that validates


class Order(BaseModel):
    """A pydantic state: LangGraph validates the input against it."""

    quantity: int
    filled: bool = False


def _fill(state: Order) -> dict[str, Any]:
    return {"filled": True}


_orders = StateGraph(Order)
_orders.add_node("fill", _fill)
_orders.add_edge(START, "fill")
_orders.add_edge("fill", END)
orders = _orders.compile(name="orders")
