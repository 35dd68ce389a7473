"""Example tool-calling agent served by graphrun (``graphs.agent`` in langgraph.json).

The classic ReAct loop: the ``agent`` node asks the model, tool calls go to the ``tools``
node, and tool results go back to the model until it answers in plain text. Calls to a
tool with side effects (``send_email``) first pass the ``review`` node, which pauses the
run until a human approves, edits or rejects them (approval.py).

The graph is compiled without a checkpointer or store because the server attaches its
own persistence to every graph it loads; pausing for a human needs that checkpointer.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from graphrun.resilience import error_boundary, retrying

# The server puts this directory on sys.path (langgraph.json "dependencies"), so siblings
# are top-level modules at runtime; mypy, run from the repository root, knows them by path.
if TYPE_CHECKING:
    from examples.agent.approval import needs_review, review
    from examples.agent.model import get_model
    from examples.agent.tools import TOOLS
else:
    from approval import needs_review, review
    from model import get_model
    from tools import TOOLS

SYSTEM_PROMPT = (
    "You are a concise assistant. Use the calculator for arithmetic, get_time for the "
    "current time and lookup_weather for weather; never guess what a tool can tell you. "
    "send_email sends an email after a human approves it; if they reject it, say it was "
    "not sent and why, and do not try again unless asked."
)


@cache
def _model_with_tools() -> Runnable[LanguageModelInput, AIMessage]:
    """Pick and bind the model on first use, not at import, and reuse its client afterwards."""
    return get_model().bind_tools(TOOLS)


def _prompt(state: MessagesState) -> list[BaseMessage]:
    """Prepend the system prompt per call instead of storing it in the thread's history."""
    return [SystemMessage(SYSTEM_PROMPT), *state["messages"]]


# A rate limit, a 5xx, a timeout or a dropped connection is tried again (waiting as long as the
# provider's Retry-After asks); anything else fails the step at once.
@retrying(attempts=3, initial=0.5)
def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
    """Sync agent step, so ``graph.invoke``/``graph.stream`` work in scripts too."""
    return {"messages": [_model_with_tools().invoke(_prompt(state), config)]}


@retrying(attempts=3, initial=0.5)
async def acall_model(state: MessagesState, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
    """Async agent step used by the server; passing ``config`` keeps token streaming wired up."""
    return {"messages": [await _model_with_tools().ainvoke(_prompt(state), config)]}


def route_after_agent(state: MessagesState) -> str:
    """Plain answers end the run; tool calls go to the tools, through review if one needs approval."""
    last = state["messages"][-1]
    if not isinstance(last, AIMessage) or not last.tool_calls:
        return END
    return "review" if needs_review(last) else "tools"


def build_graph() -> StateGraph[MessagesState]:
    """Wire agent -> ([review ->] tools -> agent)* -> end; separate from compile so tests can add a saver."""
    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(call_model, afunc=acall_model, name="agent"))
    builder.add_node("review", review)
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route_after_agent, ["review", "tools", END])
    builder.add_edge("tools", "agent")
    return builder


# Under graphrun, a step that still fails answers in the thread with this instead of failing the run
# (the cause is in the server's log); elsewhere the graph runs unchanged.
ERROR_MESSAGE = "Sorry, I could not finish that: a service I rely on is failing. Please try again shortly."
graph = error_boundary(build_graph().compile(name="agent"), ERROR_MESSAGE)
