"""The error boundary: ``error_boundary(graph, message)`` marks a graph so that a failed node answers in
the thread with ``message`` instead of failing the run (the runner reads the mark: ``boundary_of``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

# The key of a compiled graph's config that carries its boundary. A config key, not an attribute:
# LangGraph copies a graph (``copy``, ``with_config``) by its constructor's arguments, config included.
_BOUNDARY_KEY = "graphrun_error_boundary"
DEFAULT_ERROR_MESSAGE = "Sorry, something went wrong on our side and I could not finish. Please try again."


@dataclass(frozen=True)
class ErrorBoundary:
    message: str = DEFAULT_ERROR_MESSAGE
    messages_key: str = "messages"


G = TypeVar("G")


def error_boundary(graph: G, message: str = DEFAULT_ERROR_MESSAGE, *, messages_key: str = "messages") -> G:
    """The compiled ``graph``, marked so that graphrun answers a node's unhandled error in the thread:
    ``message`` is added to ``messages_key`` as an AI message, as if the failed node had said it, and the
    run ends ``success`` with the thread ``idle``; the real cause (redacted) is logged
    (``run_error_handled``) and recorded on the run's trace and in ``graphrun_run_failures_total``. Errors
    outside a node, timeouts and cancellations are not caught. Other servers run the graph unchanged."""
    if not message.strip():
        raise ValueError("error_boundary: the message must not be empty")
    with_config = getattr(graph, "with_config", None)
    if with_config is None:
        raise TypeError(f"error_boundary takes a compiled LangGraph graph, not {type(graph).__name__}")
    boundary = {"message": message, "messages_key": messages_key}
    marked: G = with_config(**{_BOUNDARY_KEY: boundary})
    return marked


def boundary_of(graph: Any) -> ErrorBoundary | None:
    """The graph's error boundary, if ``error_boundary`` marked it."""
    found = (getattr(graph, "config", None) or {}).get(_BOUNDARY_KEY)
    if not isinstance(found, dict):
        return None
    return ErrorBoundary(str(found.get("message") or DEFAULT_ERROR_MESSAGE), str(found["messages_key"]))
