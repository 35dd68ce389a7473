"""One chat graph in two forms: ``plain`` keeps ``messages`` with ``add_messages`` (every checkpoint
stores the whole list), ``delta`` with LangGraph 1.2's ``DeltaChannel`` (checkpoints store the new
messages and, every ``snapshot_frequency`` updates, a snapshot). The reply is canned: the storage of the
conversation is what is measured, not a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


def append_messages(state: Any, writes: Sequence[Any]) -> Any:
    """``add_messages`` over a batch of writes, as ``DeltaChannel`` calls its reducer (batching-invariant:
    folding two batches one after the other equals folding their concatenation)."""
    for write in writes:
        state = add_messages(state, write)
    return state


class Plain(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class Delta(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(append_messages)]


def reply(state: Any) -> dict[str, Any]:
    turn = sum(1 for m in state["messages"] if m.type == "human")
    return {"messages": [AIMessage(f"Noted, that was message {turn}. Anything else I can help with?")]}


plain = StateGraph(Plain).add_node("reply", reply).add_edge(START, "reply").add_edge("reply", END)
delta = StateGraph(Delta).add_node("reply", reply).add_edge(START, "reply").add_edge("reply", END)
