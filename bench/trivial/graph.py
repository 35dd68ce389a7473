"""A trivial two-node graph used by ``bench/runs_wait.py`` to measure per-run overhead.

The nodes do no real work, so whatever a run costs is the cost of the runtime around it: graph
scheduling, checkpoint writes and, when served, HTTP and the run queue. ``graph`` has no checkpointer
because the server attaches its own; the benchmark compiles ``builder`` itself for the raw baseline.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    """Graph state: ``count`` is overwritten by each node, ``trail`` is appended to (``operator.add``)."""

    count: int
    trail: Annotated[list[str], operator.add]


def a(state: State) -> dict[str, Any]:
    """First node: record its name and bump the counter."""
    return {"count": state["count"] + 1, "trail": ["a"]}


def b(state: State) -> dict[str, Any]:
    """Second node: same as ``a``; a finished run therefore has ``count == 2`` and ``trail == ["a", "b"]``."""
    return {"count": state["count"] + 1, "trail": ["b"]}


builder = StateGraph(State)
builder.add_node("a", a)
builder.add_node("b", b)
builder.add_edge(START, "a")
builder.add_edge("a", "b")
builder.add_edge("b", END)

graph = builder.compile()
