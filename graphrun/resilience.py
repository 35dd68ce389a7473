"""Error handling for graph authors: which failures to retry, how long to wait, when to stop calling.

Built on what LangGraph and LangChain already have, not beside them:

- ``classify(exc)``: what a failure is, for the providers people use (openai, anthropic, httpx, plain
  timeouts and connection errors): rate limits, 5xx, timeouts and connection resets are worth a retry;
  400/401/403/404/422 and validation errors fail fast. ``Retry-After`` (seconds, an HTTP date, or
  ``retry-after-ms``) is read from the response when there is one. Providers are recognised by their
  exception classes' names and ``status_code``/``response`` attributes, so none of their SDKs is imported.
- ``retry_policy()``: a LangGraph ``RetryPolicy`` for a node (``builder.add_node(..., retry_policy=...)``)
  that retries exactly what ``classify`` calls retryable, with exponential backoff and jitter.
- ``retrying(...)``: the same for a plain function or tool (sync or async), honouring ``Retry-After``.
- ``CircuitBreaker``: closed → open after ``failure_threshold`` retryable failures within ``window_s`` →
  half-open after ``reset_timeout_s`` (a probe call goes through) → closed on its success, open again on
  its failure. A pure state machine over an injected clock; ``breaker(provider, model)`` gives the one
  shared by every run of the process. An open breaker fails fast with ``CircuitOpen``.
- ``BreakerGuard``: a LangChain callback the server adds to every run, so that each model call goes
  through the breaker of its provider and model with no change to the graph.
- ``error_boundary(graph, message)``: a failed node answers in the thread with ``message`` (an AI
  message) instead of failing the run; the cause goes to logs and traces.
- ``public_error(exc)``: a stable code and a message safe to show a client, for a failure.
- ``once(name, effect)`` / ``aonce``: a side effect (an email, a charge) made once even when its node runs
  again after a crash; ``effect_key(name)`` for a provider's idempotency key (``graphrun/effects.py``).

Written here: LangGraph's ``RetryPolicy`` retries by exception type only and knows no breakers, and the
retry libraries (tenacity, backoff) know nothing of providers' errors; the classifier is the part that
matters, and a breaker is a small state machine that must be shared per provider and model.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import inspect
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langgraph.types import RetryPolicy

from graphrun import metrics
from graphrun.effects import aonce as aonce
from graphrun.effects import effect_key as effect_key
from graphrun.effects import once as once

Kind = Literal[
    "rate_limit", "server", "timeout", "connection", "client", "auth", "validation", "open", "unknown"
]
F = TypeVar("F", bound=Callable[..., Any])

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


# ---------------------------------------------------------------- retries


def retry_policy(
    *,
    max_attempts: int = 4,
    initial_interval: float = 0.5,
    backoff_factor: float = 2.0,
    max_interval: float = 30.0,
) -> RetryPolicy:
    """A node's ``RetryPolicy`` retrying what ``classify`` calls retryable (exponential, with jitter).
    LangGraph's policy cannot wait for a ``Retry-After``; wrap the call in ``retrying`` for that."""
    return RetryPolicy(
        initial_interval=initial_interval,
        backoff_factor=backoff_factor,
        max_interval=max_interval,
        max_attempts=max_attempts,
        jitter=True,
        retry_on=_policy_retries,
    )


def _policy_retries(exc: Exception) -> bool:
    failure = classify(exc)
    if failure.retryable:
        metrics.RETRIES.labels(failure.kind, "policy").inc()
    return failure.retryable


def backoff(
    attempt: int,
    *,
    initial: float = 0.5,
    factor: float = 2.0,
    cap: float = 30.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1): full jitter over the
    exponential step, but never less than what the provider asked for (itself capped at ``cap``)."""
    step = min(cap, initial * factor ** (attempt - 1))
    wait = (rng or random).uniform(step / 2, step)
    if retry_after is not None:
        wait = max(wait, min(retry_after, cap))
    return wait


def retrying(
    *,
    attempts: int = 4,
    initial: float = 0.5,
    factor: float = 2.0,
    cap: float = 30.0,
    sleep: Callable[[float], Any] | None = None,
) -> Callable[[F], F]:
    """Retry a sync or async function on retryable failures, ``attempts`` times in all."""

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                for attempt in range(1, attempts + 1):
                    try:
                        return await fn(*args, **kwargs)
                    except Exception as exc:
                        failure = classify(exc)
                        if not failure.retryable or attempt == attempts:
                            raise
                        metrics.RETRIES.labels(failure.kind, "decorator").inc()
                        wait = backoff(
                            attempt, initial=initial, factor=factor, cap=cap, retry_after=failure.retry_after
                        )
                        await (sleep or asyncio.sleep)(wait)
                raise AssertionError("unreachable")

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, attempts + 1):
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    failure = classify(exc)
                    if not failure.retryable or attempt == attempts:
                        raise
                    metrics.RETRIES.labels(failure.kind, "decorator").inc()
                    wait = backoff(
                        attempt, initial=initial, factor=factor, cap=cap, retry_after=failure.retry_after
                    )
                    (sleep or time.sleep)(wait)
            raise AssertionError("unreachable")

        return run  # type: ignore[return-value]

    return decorate


# ---------------------------------------------------------------- circuit breakers

State = Literal["closed", "open", "half_open"]
_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class CircuitOpen(Exception):
    """A call refused at once: its provider failed too often lately (``CircuitBreaker``)."""


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    window_s: float = 60.0
    reset_timeout_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _state: State = "closed"
    _failures: deque[float] = field(default_factory=deque)
    _opened_at: float = 0.0
    _probing: bool = False
    _probe_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> State:
        with self._lock:
            return self._current()

    def _current(self) -> State:
        if self._state == "open" and self.clock() - self._opened_at >= self.reset_timeout_s:
            self._state, self._probing = "half_open", False
        return self._state

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` if the call may not go through now (open, or a probe already out)."""
        with self._lock:
            state = self._current()
            if state == "closed":
                return
            if state == "half_open" and (
                not self._probing or self.clock() - self._probe_at >= self.reset_timeout_s
            ):
                # this call is the probe (or replaces one that never reported back)
                self._probing, self._probe_at = True, self.clock()
                return
            left = max(0.0, self.reset_timeout_s - (self.clock() - self._opened_at))
            raise CircuitOpen(
                f"circuit {self.name} is {state.replace('_', '-')}: calls fail fast"
                + (f" for another {left:.0f}s" if state == "open" else " while a probe call is out")
            )

    def record_success(self) -> None:
        with self._lock:
            self._state, self._probing = "closed", False
            self._failures.clear()
            self._report()

    def record_failure(self, exc: BaseException | None = None) -> None:
        """Count a failure that ``classify`` calls retryable: a 5xx, a timeout, a lost connection. A rate
        limit says nothing either way (the provider is up and asks to slow down, which ``Retry-After``
        does; opening the circuit would turn throttling into failure), nor does a cancelled call. Any
        other error is the provider answering (a 400, a 401: it is up), so it counts as a success."""
        if exc is not None:
            neutral = not isinstance(exc, Exception) or classify(exc).kind == "rate_limit"
            if neutral:
                with self._lock:
                    self._probing = False
                return
            if not classify(exc).retryable:
                self.record_success()
                return
        with self._lock:
            now = self.clock()
            if self._current() == "half_open":
                self._open(now)
                return
            self._failures.append(now)
            while self._failures and now - self._failures[0] > self.window_s:
                self._failures.popleft()
            if len(self._failures) >= self.failure_threshold:
                self._open(now)

    def _open(self, now: float) -> None:
        self._state, self._opened_at, self._probing = "open", now, False
        self._failures.clear()
        self._report()

    def _report(self) -> None:
        provider, _, model = self.name.partition("/")
        metrics.BREAKER_STATE.labels(
            metrics.bounded("provider", provider), metrics.bounded("model", model)
        ).set(_STATE_VALUE[self._state])

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``await fn(*args, **kwargs)`` through the breaker."""
        self.before_call()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker(provider: str, model: str = "", **settings: Any) -> CircuitBreaker:
    """The process's breaker for ``provider``/``model``, made on first use with ``settings``."""
    name = f"{provider}/{model}"
    with _breakers_lock:
        found = _breakers.get(name)
        if found is None:
            found = _breakers[name] = CircuitBreaker(name, **settings)
        return found


def breaker_states() -> dict[str, State]:
    """Every breaker of the process and its state (for a readiness report)."""
    with _breakers_lock:
        return {name: b.state for name, b in _breakers.items()}


def reset_breakers() -> None:
    """Forget every breaker (for tests)."""
    with _breakers_lock:
        _breakers.clear()


# ---------------------------------------------------------------- model calls through breakers


def model_identity(
    serialized: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    params: dict[str, Any] | None,
    name: str | None,
) -> tuple[str, str]:
    """(provider, model) of a LangChain model call, from what its callbacks are told: the ``ls_*``
    metadata chat models declare, else their invocation parameters, else their name."""
    meta, params = metadata or {}, params or {}
    provider = str(meta.get("ls_provider") or params.get("_type") or "unknown")
    model = str(
        meta.get("ls_model_name")
        or params.get("model")
        or params.get("model_name")
        or name
        or serialized_name(serialized)
        or "unknown"
    )
    return provider, model


def serialized_name(serialized: dict[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if isinstance(name, str):
        return name
    ids = serialized.get("id")
    return str(ids[-1]) if isinstance(ids, list) and ids else None


@dataclass(eq=False)  # LangChain keeps handlers in sets: hashable by identity
class BreakerGuard(BaseCallbackHandler):
    """Sends every model call of a run through ``breaker(provider, model)``: refused with
    ``CircuitOpen`` when the breaker is open (raised from the call's start callback, so the provider is
    not called), its outcome recorded when it ends. Must come before other handlers that open
    something at a call's start: a refused call never reaches them."""

    failure_threshold: int = 5
    window_s: float = 60.0
    reset_timeout_s: float = 30.0
    _calls: dict[UUID, CircuitBreaker] = field(default_factory=dict)

    run_inline = True
    raise_error = True  # the point: an open breaker's CircuitOpen must reach the caller

    def __post_init__(self) -> None:
        super().__init__()

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._before(serialized, run_id, metadata, kwargs.get("invocation_params"), name)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._before(serialized, run_id, metadata, kwargs.get("invocation_params"), name)

    def _before(
        self,
        serialized: dict[str, Any] | None,
        run_id: UUID,
        metadata: dict[str, Any] | None,
        params: dict[str, Any] | None,
        name: str | None,
    ) -> None:
        provider, model = model_identity(serialized, metadata, params, name)
        guard = breaker(
            provider,
            model,
            failure_threshold=self.failure_threshold,
            window_s=self.window_s,
            reset_timeout_s=self.reset_timeout_s,
        )
        guard.before_call()
        self._calls[run_id] = guard

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        guard = self._calls.pop(run_id, None)
        if guard is not None:
            guard.record_success()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        guard = self._calls.pop(run_id, None)
        if guard is not None:
            guard.record_failure(error)


# ---------------------------------------------------------------- what clients see

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


# ---------------------------------------------------------------- error boundary

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
