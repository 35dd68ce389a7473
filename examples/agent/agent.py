"""Example tool-calling agent served by graphrun (``graphs.agent`` in langgraph.json).

The classic ReAct loop: the ``agent`` node asks the model, ``tools_condition`` routes tool
calls to the ``tools`` node, and tool results go back to the model until it answers in
plain text. The graph is compiled without a checkpointer because the server attaches
its own persistence to every graph it loads.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

# The server puts this directory on sys.path (langgraph.json "dependencies"), so siblings
# are top-level modules at runtime; mypy, run from the repository root, knows them by path.
if TYPE_CHECKING:
    from examples.agent.model import get_model
    from examples.agent.tools import TOOLS
else:
    from model import get_model
    from tools import TOOLS

SYSTEM_PROMPT = (
    "You are a concise assistant. Use the calculator for arithmetic, get_time for the "
    "current time and lookup_weather for weather; never guess what a tool can tell you."
)


@cache
def _model_with_tools() -> Runnable[LanguageModelInput, AIMessage]:
    """Pick and bind the model on first use, not at import, and reuse its client afterwards."""
    return get_model().bind_tools(TOOLS)


def _prompt(state: MessagesState) -> list[BaseMessage]:
    """Prepend the system prompt per call instead of storing it in the thread's history."""
    return [SystemMessage(SYSTEM_PROMPT), *state["messages"]]


def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
    """Sync agent step, so ``graph.invoke``/``graph.stream`` work in scripts too."""
    return {"messages": [_model_with_tools().invoke(_prompt(state), config)]}


async def acall_model(state: MessagesState, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
    """Async agent step used by the server; passing ``config`` keeps token streaming wired up."""
    return {"messages": [await _model_with_tools().ainvoke(_prompt(state), config)]}


def build_graph() -> StateGraph[MessagesState]:
    """Wire agent -> (tools -> agent)* -> end; separate from compile so tests can add a saver."""
    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(call_model, afunc=acall_model, name="agent"))
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


graph = build_graph().compile(name="agent")
