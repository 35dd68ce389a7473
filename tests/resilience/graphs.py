"""Graphs the resilience tests serve, each calling ``graphrun.testing.FaultyChatModel``.

- ``retried``: one ``model`` node under ``retrying``; the run's input says which faults its model has
  (``faults``, a ``GRAPHRUN_FAULTS``-style spec), the node reports how many calls it made and the gaps
  between them.
- ``outage``: every call fails 503 (one model for the whole process, so its breaker opens).
- ``hangs``: the model never answers.
- ``guarded`` / ``unguarded``: the node raises an error carrying a secret, with and without
  ``error_boundary``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph

from graphrun.resilience import error_boundary, retrying
from graphrun.testing import Faults, FaultyChatModel

SECRET = "sk-proj-PLANTEDresilience0123456789abcdef"
BOUNDARY_MESSAGE = "Sorry, that did not work. Please try again."


class State(MessagesState, total=False):
    faults: str
    calls: int
    gaps: list[float]


def _answer() -> FakeListChatModel:
    return FakeListChatModel(responses=["all good"])


# The model of each run (its script of faults must survive the node's retries), and when each call began.
_models: dict[str, FaultyChatModel] = {}
_starts: dict[str, list[float]] = {}


@retrying(attempts=3, initial=0.05, cap=5.0)
async def _call(state: State, config: RunnableConfig) -> dict[str, Any]:
    run_id = str(config["configurable"]["run_id"])
    model = _models.setdefault(
        run_id, FaultyChatModel(inner=_answer(), faults=Faults.parse(state.get("faults", "")))
    )
    starts = _starts.setdefault(run_id, [])
    starts.append(time.monotonic())
    reply = await model.ainvoke(state["messages"], config)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    return {"messages": [reply], "calls": len(model.calls), "gaps": gaps}


def _one_node(node: Any) -> Any:
    return StateGraph(State).add_node("model", node).add_edge(START, "model")


retried = _one_node(_call).compile()

_down = FaultyChatModel(inner=_answer(), faults=Faults.parse("outage=true,model=outage-model"))


async def _call_down(state: State, config: RunnableConfig) -> dict[str, list[AnyMessage]]:
    return {"messages": [await _down.ainvoke(state["messages"], config)]}


outage = _one_node(_call_down).compile()

_stuck = FaultyChatModel(inner=_answer(), faults=Faults.parse("hang=1,model=stuck-model"))


async def _call_stuck(state: State, config: RunnableConfig) -> dict[str, list[AnyMessage]]:
    return {"messages": [await _stuck.ainvoke(state["messages"], config)]}


hangs = _one_node(_call_stuck).compile()


async def _leaky(state: State) -> dict[str, Any]:
    raise ValueError(f"the vendor refused api key {SECRET}")


guarded = error_boundary(_one_node(_leaky).compile(), BOUNDARY_MESSAGE)
unguarded = _one_node(_leaky).compile()
