"""Retrying what ``classify`` calls retryable: ``retry_policy`` for a LangGraph node, ``retrying`` for a
plain function or tool, both with exponential backoff and jitter (``backoff``)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from langgraph.types import RetryPolicy

from graphrun import metrics
from graphrun.resilience.failures import classify

F = TypeVar("F", bound=Callable[..., Any])


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
