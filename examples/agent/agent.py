"""Example tool-calling agent served by graphrun (``graphs.agent`` in langgraph.json).

LangChain's own agent (``create_agent``): the ``model`` node asks the model, tool calls go to the
``tools`` node, and tool results go back to the model until it answers in plain text. Calls to a tool
with side effects (``send_email``) first wait for a human: LangChain's ``HumanInTheLoopMiddleware``
pauses the run with an interrupt in its standard format, which chat UIs render as Approve / Edit /
Reject:

    {"action_requests": [{"name": "send_email", "args": {...}, "description": "..."}],
     "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}]}

and the thread waits as ``interrupted`` (for seconds or for days: the state is checkpointed) until a
client resumes it with ``Command(resume={"decisions": [<one per action request>]})``:

- ``{"type": "approve"}`` runs the call as the model proposed it;
- ``{"type": "edit", "edited_action": {"name": "send_email", "args": {...}}}`` runs it with the
  reviewer's arguments instead;
- ``{"type": "reject", "message": "..."}`` does not run it: the model gets a tool message saying so,
  and answers from there.

Side-effect-free calls in the same model turn go to the tools unasked. The graph is compiled without a
checkpointer or store because the server attaches its own persistence to every graph it loads; pausing
for a human needs that checkpointer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    HumanInTheLoopMiddleware,
    InterruptOnConfig,
    ModelRequest,
    ModelResponse,
)
from langchain_core.language_models import BaseChatModel
from langgraph.store.base import BaseStore
from langgraph.types import Checkpointer

from graphrun.resilience import error_boundary, retrying

# The server puts this directory on sys.path (langgraph.json "dependencies"), so siblings
# are top-level modules at runtime; mypy, run from the repository root, knows them by path.
if TYPE_CHECKING:
    from examples.agent.model import get_model
    from examples.agent.offline_model import OfflineChatModel
    from examples.agent.tools import TOOLS
else:
    from model import get_model
    from offline_model import OfflineChatModel
    from tools import TOOLS

SYSTEM_PROMPT = (
    "You are a concise assistant. Use the calculator for arithmetic, get_time for the "
    "current time and lookup_weather for weather; never guess what a tool can tell you. "
    "send_email sends an email after a human approves it; if they reject it, say it was "
    "not sent and why, and do not try again unless asked."
)

# The tools a human must approve first, and what the reviewer may decide about each.
APPROVAL_REQUIRED: dict[str, bool | InterruptOnConfig] = {
    "send_email": {
        "allowed_decisions": ["approve", "edit", "reject"],
        "description": "The assistant wants to send this email. Approve, edit or reject it.",
    }
}


@cache
def _model() -> BaseChatModel:
    """Pick the model on first use, not at import, and reuse its client afterwards."""
    return get_model()


# A rate limit, a 5xx, a timeout or a dropped connection is tried again (waiting as long as the
# provider's Retry-After asks); anything else fails the step at once.
@retrying(attempts=3, initial=0.5)
def _call(handler: Callable[[ModelRequest], ModelResponse], request: ModelRequest) -> ModelResponse:
    return handler(request)


@retrying(attempts=3, initial=0.5)
async def _acall(
    handler: Callable[[ModelRequest], Awaitable[ModelResponse]], request: ModelRequest
) -> ModelResponse:
    return await handler(request)


class ChosenModel(AgentMiddleware[Any, Any, Any]):
    """Every model call goes to the model the environment chose (model.py: OpenAI, Anthropic, or the
    offline model), retried on a provider's transient failures."""

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        return _call(handler, request.override(model=_model()))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        return await _acall(handler, request.override(model=_model()))


def build_agent(checkpointer: Checkpointer = None, store: BaseStore | None = None) -> Any:
    """The agent; the shipped graph has no persistence (the server attaches its own), tests pass theirs."""
    return create_agent(
        OfflineChatModel(),  # replaced on every call by the chosen model (ChosenModel)
        TOOLS,
        system_prompt=SYSTEM_PROMPT,
        middleware=[ChosenModel(), HumanInTheLoopMiddleware(interrupt_on=APPROVAL_REQUIRED)],
        checkpointer=checkpointer,
        store=store,
        name="agent",
    )


# Under graphrun, a step that still fails answers in the thread with this instead of failing the run
# (the cause is in the server's log); elsewhere the graph runs unchanged.
ERROR_MESSAGE = "Sorry, I could not finish that: a service I rely on is failing. Please try again shortly."
graph = error_boundary(build_agent(), ERROR_MESSAGE)
