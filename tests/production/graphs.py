"""The graph the production-mode tests serve. No network, no model.

Loaded by the ``graphrun api`` and ``graphrun worker`` processes through ``langgraph.json``; the tests never
import this module.

``chat`` answers a human message with ``steps`` AI messages, ``step 0`` .. ``step <steps-1>``, one per
superstep, each after sleeping ``delay`` seconds. Every message gets a fresh random id, so that a step that
executed twice leaves two messages (``add_messages`` would merge equal ids and hide it), and records in its
``response_metadata`` the process that executed it (``pid``), so that a test can tell which worker did what.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, Literal

from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph


class ChatState(MessagesState, total=False):
    steps: int
    delay: float


def _steps_done(state: ChatState) -> int:
    return sum(1 for m in state["messages"] if m.type == "ai")


async def step(state: ChatState) -> dict[str, Any]:
    index = _steps_done(state)
    await asyncio.sleep(state.get("delay", 0.0))
    message = AIMessage(content=f"step {index}", id=str(uuid.uuid4()), response_metadata={"pid": os.getpid()})
    return {"messages": [message]}


def more(state: ChatState) -> Literal["step", "__end__"]:
    return "step" if _steps_done(state) < state.get("steps", 1) else "__end__"


chat = (
    StateGraph(ChatState)
    .add_node("step", step)
    .add_edge(START, "step")
    .add_conditional_edges("step", more)
    .compile()
)
