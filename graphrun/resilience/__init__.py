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

Held by what it does: ``failures`` (classify, public_error), ``retries``, ``breakers``, ``boundary``; all
re-exported here, the one import graph authors use (``graphrun.resilience``).
"""

from __future__ import annotations

from graphrun.effects import aonce, effect_key, once
from graphrun.resilience.boundary import DEFAULT_ERROR_MESSAGE, ErrorBoundary, boundary_of, error_boundary
from graphrun.resilience.breakers import (
    BreakerGuard,
    CircuitBreaker,
    CircuitOpen,
    State,
    breaker,
    breaker_states,
    model_identity,
    reset_breakers,
    serialized_name,
)
from graphrun.resilience.failures import Failure, Kind, classify, is_retryable, public_error
from graphrun.resilience.retries import backoff, retry_policy, retrying

__all__ = [
    "DEFAULT_ERROR_MESSAGE",
    "BreakerGuard",
    "CircuitBreaker",
    "CircuitOpen",
    "ErrorBoundary",
    "Failure",
    "Kind",
    "State",
    "aonce",
    "backoff",
    "boundary_of",
    "breaker",
    "breaker_states",
    "classify",
    "effect_key",
    "error_boundary",
    "is_retryable",
    "model_identity",
    "once",
    "public_error",
    "reset_breakers",
    "retry_policy",
    "retrying",
    "serialized_name",
]
