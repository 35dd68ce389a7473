"""The graph ``bench/chaos.py`` drills: one ``answer`` node calling a chat model that
``graphrun.testing`` wraps with the faults of ``GRAPHRUN_FAULTS_FILE`` (which the drill rewrites to start
and end a fault), under ``graphrun.resilience.retrying``. The node records the gaps between its attempts,
so that the drill can check that retries waited what ``Retry-After`` asked. Each execution of the node is
filed in the graph's store under ``("executions", <thread id>)`` (run, node, step, when it began) before it
does anything, for the history checker (bench/_history.py) to find a completed node that ran again."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from langchain_core.language_models import FakeListChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_store
from langgraph.graph import START, MessagesState, StateGraph

from graphrun.resilience import retrying
from graphrun.testing import with_faults_from_env


class State(MessagesState, total=False):
    gaps: list[float]


model = with_faults_from_env(FakeListChatModel(responses=["the answer"]))
_starts: dict[str, list[float]] = {}  # run id -> when each attempt of its node began


@retrying(attempts=4, initial=0.2, cap=10.0)
async def _attempt(state: State, config: RunnableConfig) -> dict[str, Any]:
    starts = _starts.setdefault(str(config["configurable"]["run_id"]), [])
    starts.append(time.monotonic())
    reply = await model.ainvoke(state["messages"], config)
    return {"messages": [reply], "gaps": [b - a for a, b in itertools.pairwise(starts)]}


async def answer(state: State, config: RunnableConfig) -> dict[str, Any]:
    configurable, metadata = config["configurable"], config.get("metadata") or {}
    await get_store().aput(
        ("executions", str(configurable["thread_id"])),
        uuid.uuid4().hex,
        {
            "run_id": str(configurable["run_id"]),
            "node": str(metadata.get("langgraph_node")),
            "step": int(metadata["langgraph_step"]),
            "started_at": time.time(),
        },
    )
    try:
        return await _attempt(state, config)
    finally:
        _starts.pop(str(config["configurable"]["run_id"]), None)


graph = StateGraph(State).add_node("answer", answer).add_edge(START, "answer").compile()
