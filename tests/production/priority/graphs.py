"""A graph that records when each of its runs started and ended (wall-clock seconds, comparable across
the processes of one machine), for the priority tests."""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


class Clock(TypedDict, total=False):
    delay_s: float
    n: int  # which run of its thread this is, as the client numbered it
    spans: Annotated[list[list[float]], operator.add]  # [n, started, ended] per run


async def tick(state: Clock) -> Clock:
    started = time.time()
    await asyncio.sleep(state.get("delay_s", 0.0))
    return {"spans": [[state.get("n", 0), started, time.time()]]}


clock = StateGraph(Clock).add_node("tick", tick).add_edge(START, "tick").add_edge("tick", END).compile()
