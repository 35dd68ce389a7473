# mypy: disable-error-code="arg-type"
# (openai 3 types its errors' response as its own httpx2.Response; the httpx one is what it gets at run time)
"""graphrun.resilience: the failure classifier on the providers' own exceptions, backoff, the retry
decorator, and the circuit breaker as a state machine over a fake clock."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anthropic
import httpx
import openai
import pytest

from graphrun import metrics
from graphrun.resilience import (
    CircuitBreaker,
    CircuitOpen,
    backoff,
    breaker,
    classify,
    retry_policy,
    retrying,
)

REQUEST = httpx.Request("POST", "https://api.example.com/v1/chat")


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=REQUEST, json={"error": {"message": "x"}})


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (openai.RateLimitError("slow down", response=_response(429), body=None), "rate_limit", True),
        (openai.InternalServerError("boom", response=_response(500), body=None), "server", True),
        (openai.APITimeoutError(request=REQUEST), "timeout", True),
        (openai.APIConnectionError(request=REQUEST), "connection", True),
        (openai.AuthenticationError("no", response=_response(401), body=None), "auth", False),
        (openai.BadRequestError("bad", response=_response(400), body=None), "client", False),
        (anthropic.RateLimitError("slow", response=_response(429), body=None), "rate_limit", True),
        (anthropic.InternalServerError("overloaded", response=_response(529), body=None), "server", True),
        (anthropic.PermissionDeniedError("no", response=_response(403), body=None), "auth", False),
        (httpx.HTTPStatusError("503", request=REQUEST, response=_response(503)), "server", True),
        (httpx.HTTPStatusError("422", request=REQUEST, response=_response(422)), "validation", False),
        (httpx.ReadTimeout("slow", request=REQUEST), "timeout", True),
        (httpx.ConnectError("refused", request=REQUEST), "connection", True),
        (TimeoutError(), "timeout", True),
        (ConnectionResetError(), "connection", True),
        (ValueError("bad input"), "validation", False),
        (CircuitOpen("open"), "open", False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_failures_are_classified(exc: BaseException, kind: str, retryable: bool) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.retryable) == (kind, retryable)


def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date() -> None:
    def after(**headers: str) -> float | None:
        return classify(openai.RateLimitError("x", response=_response(429, **headers), body=None)).retry_after

    assert after(**{"retry-after": "7"}) == 7.0
    assert after(**{"retry-after-ms": "1500"}) == 1.5
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (after(**{"retry-after": when}) or 0) <= 30
    assert after() is None
    assert after(**{"retry-after": "soon"}) is None


def test_backoff_grows_with_jitter_and_waits_at_least_what_was_asked() -> None:
    rng = random.Random(1)
    waits = [backoff(n, initial=1, factor=2, cap=10, rng=rng) for n in range(1, 6)]
    for n, wait in enumerate(waits, start=1):
        step = min(10, 2 ** (n - 1))
        assert step / 2 <= wait <= step
    assert backoff(1, initial=0.1, retry_after=5, rng=rng) == 5
    assert backoff(1, initial=0.1, cap=3, retry_after=60, rng=rng) == 3


def test_the_retry_policy_retries_only_what_is_worth_it() -> None:
    policy = retry_policy(max_attempts=5)
    assert policy.max_attempts == 5
    assert policy.jitter
    assert callable(policy.retry_on)
    assert policy.retry_on(openai.RateLimitError("x", response=_response(429), body=None))
    assert not policy.retry_on(openai.BadRequestError("x", response=_response(400), body=None))


def test_retrying_retries_rate_limits_honouring_retry_after_and_stops_on_client_errors() -> None:
    slept: list[float] = []
    calls = {"n": 0}

    @retrying(attempts=3, initial=0.01, sleep=slept.append)
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise openai.RateLimitError("x", response=_response(429, **{"retry-after": "2"}), body=None)
        return "ok"

    assert flaky() == "ok"
    assert slept == [2.0, 2.0]

    @retrying(attempts=3, sleep=slept.append)
    def refused() -> None:
        raise openai.BadRequestError("x", response=_response(400), body=None)

    with pytest.raises(openai.BadRequestError):
        refused()
    assert len(slept) == 2, "no retry of a client error"


def test_retrying_an_async_function_gives_up_after_its_attempts() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    @retrying(attempts=3, initial=0.01, sleep=sleep)
    async def down() -> None:
        raise httpx.ConnectError("refused", request=REQUEST)

    with pytest.raises(httpx.ConnectError):
        asyncio.run(down())
    assert len(slept) == 2


def state(b: CircuitBreaker) -> str:
    return b.state  # read afresh each time (the clock moves it)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _server_error() -> Exception:
    return openai.InternalServerError("x", response=_response(500), body=None)


def test_a_breaker_opens_after_failures_in_its_window_then_probes_and_closes() -> None:
    clock = Clock()
    b = CircuitBreaker("prov/model", failure_threshold=3, window_s=10, reset_timeout_s=30, clock=clock)
    for _ in range(2):
        b.before_call()
        b.record_failure(_server_error())
    clock.now = 20  # the first two fall out of the window
    b.record_failure(_server_error())
    assert state(b) == "closed"
    b.record_failure(_server_error())
    b.record_failure(_server_error())
    assert state(b) == "open"
    with pytest.raises(CircuitOpen, match="prov/model is open"):
        b.before_call()
    assert (
        metrics.REGISTRY.get_sample_value(
            "graphrun_circuit_breaker_state", {"provider": "prov", "model": "model"}
        )
        == 2
    )

    clock.now += 30
    assert state(b) == "half_open"
    b.before_call()  # the probe
    with pytest.raises(CircuitOpen, match="probe"):
        b.before_call()
    b.record_success()
    assert state(b) == "closed"
    b.before_call()


def test_a_failed_probe_opens_the_breaker_again() -> None:
    clock = Clock()
    b = CircuitBreaker("p/m", failure_threshold=1, reset_timeout_s=5, clock=clock)
    b.record_failure(_server_error())
    clock.now = 5
    b.before_call()
    b.record_failure(_server_error())
    assert state(b) == "open"
    clock.now = 9
    assert state(b) == "open"


def test_client_errors_do_not_open_a_breaker() -> None:
    b = CircuitBreaker("p/m", failure_threshold=1)
    b.record_failure(openai.BadRequestError("x", response=_response(400), body=None))
    assert state(b) == "closed"


def test_the_breaker_of_a_provider_and_model_is_shared_and_wraps_calls() -> None:
    assert breaker("shared", "m1") is breaker("shared", "m1")
    assert breaker("shared", "m1") is not breaker("shared", "m2")
    b = breaker("wrapped", "m", failure_threshold=1)

    async def failing() -> None:
        raise _server_error()

    with pytest.raises(openai.InternalServerError):
        asyncio.run(b.call(failing))
    with pytest.raises(CircuitOpen):
        asyncio.run(b.call(failing))
