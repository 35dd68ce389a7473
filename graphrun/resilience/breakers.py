"""Circuit breakers: ``CircuitBreaker`` (a state machine over an injected clock), the one per provider and
model shared by the process (``breaker``), and ``BreakerGuard``, the callback that puts every model call
of a run through its breaker."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from graphrun import metrics
from graphrun.resilience.failures import classify

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
