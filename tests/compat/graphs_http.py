"""A graph that reports the request headers its run got in ``config.configurable``."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class Seen(TypedDict, total=False):
    headers: dict[str, Any]
    turns: int


def look(state: Seen, config: RunnableConfig) -> Seen:
    configurable = config.get("configurable", {})
    headers = {k: v for k, v in configurable.items() if k.startswith("x-") or k == "user-agent"}
    return {"headers": headers, "turns": state.get("turns", 0) + 1}


headers = StateGraph(Seen).add_node("look", look).add_edge(START, "look").compile()
