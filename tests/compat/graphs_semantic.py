"""A graph that recalls notes by meaning from inside a node, the way a memory agent does: the run's
store is the server's, with langgraph.json's ``store.index`` applied in the process that runs it."""

from __future__ import annotations

from langgraph.graph import START, StateGraph
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict


class Recall(TypedDict, total=False):
    namespace: list[str]
    query: str
    found: list[str]


async def recall(state: Recall, *, store: BaseStore) -> Recall:
    items = await store.asearch(tuple(state["namespace"]), query=state["query"], limit=1)
    return {"found": [item.key for item in items]}


recaller = StateGraph(Recall).add_node("recall", recall).add_edge(START, "recall").compile()
