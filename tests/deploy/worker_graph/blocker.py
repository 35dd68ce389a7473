"""A graph whose node blocks its worker's event loop for ``input["block_s"]`` seconds (``time.sleep`` in an
async node, the mistake a graph author makes with a blocking client): the worker's liveness test."""

from __future__ import annotations

import time
from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    block_s: float


async def block(state: State) -> dict[str, float]:
    time.sleep(state["block_s"])  # noqa: ASYNC251 - blocking on purpose
    return {"block_s": state["block_s"]}


graph = StateGraph(State).add_node("block", block).add_edge(START, "block").add_edge("block", END).compile()
