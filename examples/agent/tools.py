"""Small tools for the example agent.

They exist to exercise the tool-calling loop end to end (model -> ToolNode -> model)
without network access. Three are side-effect free; ``send_email`` is the one with a
side effect, so the agent asks a human before it runs (see agent.py), and sends through
``graphrun.resilience.once``, so that its tool call running again (its worker died before the
result was saved) does not send a second email. Its "mail server" is the LangGraph store:
sent emails are filed under ``("outbox", <thread id>)`` where a client can list them, and
nothing ever leaves the machine.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime
from pydantic import BaseModel, Field

from graphrun.resilience import once

_MAX_EXPRESSION_LENGTH = 200
_BINARY_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY_OPERATORS: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_WEATHER: dict[str, str] = {
    "amsterdam": "12°C, light rain, wind 20 km/h",
    "berlin": "15°C, overcast, wind 10 km/h",
    "london": "14°C, cloudy, wind 15 km/h",
    "new york": "22°C, sunny, wind 8 km/h",
    "paris": "18°C, partly cloudy, wind 12 km/h",
    "san francisco": "17°C, foggy, wind 18 km/h",
    "tokyo": "25°C, clear, wind 5 km/h",
}


def _evaluate_node(node: ast.expr) -> float:
    """Evaluate one node of an arithmetic AST, refusing anything but numbers and + - * /.

    Walking the AST ourselves (instead of eval) means user text can never reach names,
    calls, attributes or exponentiation, so the worst a caller can do is get an error.
    """
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS:
        apply_binary = _BINARY_OPERATORS[type(node.op)]
        return apply_binary(_evaluate_node(node.left), _evaluate_node(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPERATORS:
        return _UNARY_OPERATORS[type(node.op)](_evaluate_node(node.operand))
    raise ValueError(f"only numbers, parentheses and + - * / are allowed, not {type(node).__name__}")


def _format_number(value: float) -> str:
    """Render whole results without a trailing '.0' so '6 * 7' reads as '42'."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def evaluate_arithmetic(expression: str) -> str:
    """Evaluate + - * / over numbers (with parentheses) and return the result as text.

    Errors come back as text rather than exceptions so the model can read and relay them.
    """
    if len(expression) > _MAX_EXPRESSION_LENGTH:
        return f"Error: expression longer than {_MAX_EXPRESSION_LENGTH} characters"
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        return _format_number(_evaluate_node(tree.body))
    except ZeroDivisionError:
        return "Error: division by zero"
    except OverflowError:
        return "Error: result too large"
    except SyntaxError:
        return f"Error: {expression!r} is not a valid arithmetic expression"
    except ValueError as exc:
        return f"Error: cannot evaluate {expression!r} ({exc})"


def _resolve_timezone(name: str) -> tzinfo | None:
    """Map a timezone name to tzinfo; UTC works even where the tz database is missing."""
    if name.strip().upper() in {"", "UTC", "Z", "GMT"}:
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression using + - * / and parentheses, e.g. '(2 + 3) * 4'."""
    return evaluate_arithmetic(expression)


@tool
def get_time(timezone: str = "UTC") -> str:
    """Return the current time in an IANA timezone such as 'Europe/Paris' (default UTC)."""
    zone = _resolve_timezone(timezone)
    if zone is None:
        return f"Error: unknown timezone {timezone!r}; use an IANA name like 'Europe/Paris'"
    return datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


@tool
def lookup_weather(city: str) -> str:
    """Return today's weather for a city (canned demo data, no network)."""
    report = _WEATHER.get(city.strip().lower())
    if report is None:
        known = ", ".join(name.title() for name in sorted(_WEATHER))
        return f"No weather data for {city}. Known cities: {known}"
    return f"{city.strip().title()}: {report}"


class EmailDraft(BaseModel):
    """The arguments of ``send_email``; a reviewer who edits the call supplies a whole new draft.

    Extra fields are allowed here only because the injected ``runtime`` passes through this
    schema; a reviewer's edit missing a field fails the tool call, and the model is told why.
    """

    to: str = Field(description="Recipient address, e.g. 'ann@example.com'")
    subject: str = Field(description="Subject line")
    body: str = Field(description="Plain-text message body")


def outbox_namespace(thread_id: str) -> tuple[str, str]:
    """Store namespace of the emails sent from one thread."""
    return ("outbox", thread_id)


@tool(args_schema=EmailDraft)
def send_email(to: str, subject: str, body: str, runtime: ToolRuntime[None, Any]) -> str:
    """Send an email. A human approves, edits or rejects every email before it is sent."""
    if runtime.store is None:
        return "Error: this graph has no store, so there is no outbox to send from"
    store = runtime.store
    thread_id = str(runtime.config.get("configurable", {}).get("thread_id", "none"))
    email = {"to": to, "subject": subject, "body": body, "tool_call_id": runtime.tool_call_id}

    def send() -> str:
        # A fresh key per send, like a real mail server's message id: sending twice files two emails.
        store.put(outbox_namespace(thread_id), uuid4().hex, email)
        return f"Email sent to {to} with the subject {subject!r}"

    # Once per tool call: this call running again after a crash returns the first send's answer.
    return once(f"send_email:{runtime.tool_call_id}", send, config=runtime.config, store=store)


TOOLS: list[BaseTool] = [calculator, get_time, lookup_weather, send_email]
