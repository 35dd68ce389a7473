"""What a failure is: ``classify`` (kind, whether to retry, ``Retry-After``) for the providers people use,
recognised by their exception classes' names and status codes, and ``public_error``, what a client is
shown of one."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "rate_limit", "server", "timeout", "connection", "client", "auth", "validation", "open", "unknown"
]

_RETRYABLE: frozenset[Kind] = frozenset({"rate_limit", "server", "timeout", "connection"})
# The providers' exception class names (openai, anthropic, and the SDKs built the same way).
_BY_NAME: dict[str, Kind] = {
    "RateLimitError": "rate_limit",
    "APITimeoutError": "timeout",
    "APIConnectionError": "connection",
    "InternalServerError": "server",
    "ServiceUnavailableError": "server",
    "OverloadedError": "server",
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "BadRequestError": "client",
    "NotFoundError": "client",
    "ConflictError": "client",
    "UnprocessableEntityError": "validation",
    "ValidationError": "validation",
    "OutputParserException": "validation",
    "CircuitOpen": "open",
}


@dataclass(frozen=True)
class Failure:
    kind: Kind
    retryable: bool
    status: int | None = None
    retry_after: float | None = None  # seconds the provider asked to wait


def classify(exc: BaseException) -> Failure:
    status = _status(exc)
    retry_after = _retry_after(exc)
    kind = _kind(exc, status)
    return Failure(kind, kind in _RETRYABLE, status, retry_after)


def is_retryable(exc: BaseException) -> bool:
    return classify(exc).retryable


def _kind(exc: BaseException, status: int | None) -> Kind:
    for cls in type(exc).__mro__:
        if cls.__name__ in _BY_NAME:
            return _BY_NAME[cls.__name__]
    if status is not None:
        if status == 429:
            return "rate_limit"
        if status in (408, 425) or status >= 500:
            return "server" if status >= 500 else "timeout"
        if status in (401, 403):
            return "auth"
        if status == 422:
            return "validation"
        if 400 <= status < 500:
            return "client"
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & {"TimeoutException", "ReadTimeout", "ConnectTimeout"}:
        return "timeout"
    if isinstance(exc, ConnectionError) or names & {"ConnectError", "RemoteProtocolError", "NetworkError"}:
        return "connection"
    if isinstance(exc, (ValueError, TypeError)):
        return "validation"
    return "unknown"


def _status(exc: BaseException) -> int | None:
    for holder in (exc, getattr(exc, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# A failure's stable code and a message that says what happened without the provider's own text (which
# can hold request ids, URLs, keys or a user's data), by kind.
_PUBLIC: dict[Kind, tuple[str, str]] = {
    "rate_limit": ("rate_limited", "the model provider is rate-limiting requests; try again shortly"),
    "server": ("provider_error", "the model provider failed to answer; try again"),
    "timeout": ("timeout", "a call to an upstream service timed out"),
    "connection": ("provider_unreachable", "an upstream service could not be reached"),
    "auth": ("provider_auth", "an upstream service refused the server's credentials"),
    "open": ("circuit_open", "an upstream service keeps failing; calls to it are paused for a moment"),
}
_GRAPH_ERROR = ("graph_error", "the run failed in the graph")


def public_error(exc: BaseException) -> tuple[str, str]:
    """(code, message) for a client: stable codes, no detail of the cause."""
    return _PUBLIC.get(classify(exc).kind, _GRAPH_ERROR)
