"""Human approval for tool calls with side effects: the graph pauses before they run.

The ``review`` node sits between the model and the tools. For each call to a tool in
``APPROVAL_REQUIRED`` it calls ``interrupt()`` with the pending action; the run ends and
the thread waits as ``interrupted`` (for seconds or for days: the state is checkpointed)
until a client resumes it with ``Command(resume=<decision>)``:

- ``{"decision": "approve"}`` runs the call as the model proposed it;
- ``{"decision": "edit", "args": {...}}`` runs it with the reviewer's arguments instead;
- ``{"decision": "reject", "reason": "..."}`` does not run it: the model gets a tool
  message saying so, and answers from there.

The decision schema travels with the interrupt (``response_schema``) so clients can
render a form, and a resume value that does not match it is refused before anything runs.
Side-effect-free calls in the same model turn go to the tools unasked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, tool_call
from langgraph.graph import MessagesState
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel, ConfigDict, Field, RootModel

# Siblings are top-level modules at runtime (see agent.py); mypy knows them by path.
if TYPE_CHECKING:
    from examples.agent.tools import EmailDraft
else:
    from tools import EmailDraft

APPROVAL_REQUIRED = frozenset({"send_email"})


class Approve(BaseModel):
    """Run the call with the arguments the model chose."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve"]


class EditedEmail(EmailDraft):
    """A replacement draft; unknown fields are refused so a typo cannot be silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Edit(BaseModel):
    """Run the call, but with these arguments."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["edit"]
    args: EditedEmail


class Reject(BaseModel):
    """Do not run the call; the reason is passed on to the model."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["reject"]
    reason: str = ""


class ReviewDecision(RootModel[Annotated[Approve | Edit | Reject, Field(discriminator="decision")]]):
    """A reviewer's answer to one pending action: approve, edit or reject."""


def needs_review(message: BaseMessage) -> bool:
    """Whether a model turn asks for any tool that must be approved first."""
    return isinstance(message, AIMessage) and any(
        call["name"] in APPROVAL_REQUIRED for call in message.tool_calls
    )


def pending_action(call: ToolCall) -> dict[str, Any]:
    """The interrupt payload: what would run, and what we ask the reviewer."""
    return {
        "action": call["name"],
        "args": call["args"],
        "tool_call_id": call["id"],
        "question": f"Run {call['name']} with these arguments? Approve, edit the arguments, or reject.",
    }


def rejection(call: ToolCall, reason: str) -> ToolMessage:
    """The tool result the model sees for a rejected call (status 'error': nothing ran)."""
    because = reason.strip() or "none given"
    return ToolMessage(
        f"The user rejected this call, so {call['name']} did not run. Reason: {because}",
        tool_call_id=call["id"] or "",
        name=call["name"],
        status="error",
    )


def _to_run(call: ToolCall, args: dict[str, Any]) -> ToolCall:
    """A call for ToolNode's list input, which recognises calls by their ``type`` key."""
    return tool_call(name=call["name"], args=args, id=call["id"])


def decide(call: ToolCall) -> ToolCall | ToolMessage:
    """Ask the reviewer about one call: the call to run (maybe edited), or a rejection.

    On the first pass ``interrupt`` raises and the run pauses; when the thread is resumed the
    node runs again from the top and ``interrupt`` returns the validated decision instead.
    """
    decision = interrupt(pending_action(call), response_schema=ReviewDecision).root
    match decision:
        case Approve():
            return _to_run(call, call["args"])
        case Edit(args=draft):
            return _to_run(call, draft.model_dump())
        case Reject(reason=reason):
            return rejection(call, reason)


def review(state: MessagesState) -> Command[Literal["agent", "tools"]]:
    """Ask about each guarded call in order, then send only the approved calls to the tools.

    Several guarded calls give several interrupts, one after another, each resumed on its own.
    Rejections are added to the history at once; if nothing is left to run, the model is told.
    """
    request = state["messages"][-1]
    assert isinstance(request, AIMessage), "review runs only after a model turn with tool calls"
    to_run: list[ToolCall] = []
    rejected: list[ToolMessage] = []
    for call in request.tool_calls:
        outcome = decide(call) if call["name"] in APPROVAL_REQUIRED else _to_run(call, call["args"])
        if isinstance(outcome, ToolMessage):
            rejected.append(outcome)
        else:
            to_run.append(outcome)
    if not to_run:
        return Command(goto="agent", update={"messages": rejected})
    # ToolNode runs exactly the calls it is sent, so a rejected call can never reach it.
    return Command(goto=Send("tools", to_run), update={"messages": rejected})
