"""A graph that reads the authenticated user from its config, as the official docs' "access the user in
your graph" example does."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class Who(TypedDict, total=False):
    identity: str
    name: str
    user_id: str
    permissions: list[str]


def whoami(state: Who, config: RunnableConfig) -> Who:
    configurable: dict[str, Any] = config.get("configurable") or {}
    user_config = configurable.get("langgraph_auth_user") or {}
    return {
        "identity": user_config.get("identity", ""),
        "name": user_config.get("display_name", ""),
        "user_id": configurable.get("langgraph_auth_user_id", ""),
        "permissions": configurable.get("langgraph_auth_permissions", []),
    }


graph = StateGraph(Who).add_node("whoami", whoami).add_edge(START, "whoami").compile()
