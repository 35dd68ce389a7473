"""Graphs for the A2A tests: chat graphs (their input has ``messages``, which A2A needs), one that asks
a question with ``interrupt()`` and answers with what it was told, one that takes as long as it is
told (``"sleep <seconds>"``)."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt


def _text(message: AnyMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def _echo(state: MessagesState) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"you said: {_text(state['messages'][-1])}")]}


def _approve(state: MessagesState) -> dict[str, Any]:
    answer = interrupt({"question": f"approve {_text(state['messages'][-1])}?"})
    return {"messages": [AIMessage(content=f"approved: {answer}")]}


async def _sleep(state: MessagesState) -> dict[str, Any]:
    words = _text(state["messages"][-1]).split()
    await asyncio.sleep(float(words[-1]) if words and words[0] == "sleep" else 0)
    return {"messages": [AIMessage(content="awake")]}


def _chat_graph(node: Any, name: str) -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node(name, node)
    graph.add_edge(START, name)
    graph.add_edge(name, END)
    return graph.compile(name=name)


echoes = _chat_graph(_echo, "echoes")
approves = _chat_graph(_approve, "approves")
sleeps = _chat_graph(_sleep, "sleeps")
