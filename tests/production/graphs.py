"""The graph the production-mode tests serve. No network, no model.

Loaded by the ``graphrun api`` and ``graphrun worker`` processes through ``langgraph.json``; the tests never
import this module.

``chat`` answers a human message with ``steps`` AI messages, ``step 0`` .. ``step <steps-1>``, one per
superstep, each after sleeping ``delay`` seconds. Every message gets a fresh random id, so that a step that
executed twice leaves two messages (``add_messages`` would merge equal ids and hide it), and records in its
``response_metadata`` the process that executed it (``pid``), so that a test can tell which worker did what.

``emailer`` sends one "email" (filed in the store under ``("outbox", <thread id>)``) through
``graphrun.resilience.aonce``, then, on the execution that sent it, sleeps ``delay`` seconds before its step
is checkpointed: the window in which a worker killed leaves the step to run again elsewhere. Each execution
of the step is filed under ``("executions", <thread id>)`` with its process id.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, Literal, TypedDict

from langchain_core.messages import AIMessage
from langgraph.config import get_config, get_store
from langgraph.graph import START, MessagesState, StateGraph

from graphrun.resilience import aonce


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


class EmailState(TypedDict, total=False):
    to: str
    delay: float
    sent: str


async def send_email(state: EmailState) -> dict[str, Any]:
    store = get_store()
    thread_id = str(get_config()["configurable"]["thread_id"])
    await store.aput(("executions", thread_id), uuid.uuid4().hex, {"pid": os.getpid()})
    sent_here: list[bool] = []

    async def send() -> str:
        await store.aput(("outbox", thread_id), uuid.uuid4().hex, {"to": state["to"], "pid": os.getpid()})
        sent_here.append(True)
        return f"sent to {state['to']}"

    result = await aonce("email", send)
    if sent_here:
        await asyncio.sleep(state.get("delay", 0.0))
    return {"sent": result}


emailer = StateGraph(EmailState).add_node("send_email", send_email).add_edge(START, "send_email").compile()
