"""A graph whose state holds an object msgpack cannot write (a plain class): its checkpoints need
``checkpointer.serde.pickle_fallback``."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from serde_types import Plan  # type: ignore[import-not-found]  # a sibling, imported as the server does


class State(TypedDict, total=False):
    text: str
    plan: Any


def _make(state: State) -> State:
    return {"plan": Plan(state["text"].split())}


def _use(state: State) -> State:
    return {"text": f"{len(state['plan'].steps)} steps", "plan": None}


_plans = StateGraph(State).add_sequence([("make", _make), ("use", _use)])
plans = _plans.add_edge(START, "make").add_edge("use", END).compile(name="plans")
