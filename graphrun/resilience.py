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

from langgraph.types import RetryPolicy

from graphrun import metrics

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
        retry_on=is_retryable,
    )


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
            if state == "half_open" and not self._probing:
                self._probing = True  # this call is the probe
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
        """Count a failure (one that ``classify`` calls retryable; others say nothing of the provider)."""
        if exc is not None and not classify(exc).retryable:
            with self._lock:
                if self._state == "half_open":
                    self._probing = False
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
