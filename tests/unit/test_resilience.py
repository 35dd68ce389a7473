# mypy: disable-error-code="arg-type"
# (openai 3 types its errors' response as its own httpx2.Response; the httpx one is what it gets at run time)
"""graphrun.resilience: the failure classifier on the providers' own exceptions, backoff, the retry
decorator, and the circuit breaker as a state machine over a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from langchain_core.language_models import BaseChatModel, FakeListChatModel
from langchain_core.messages import BaseMessage

from graphrun import errors, metrics
from graphrun.models import Timeouts, run_timeouts
from graphrun.resilience import (
    BreakerGuard,
    CircuitBreaker,
    CircuitOpen,
    ErrorBoundary,
    backoff,
    boundary_of,
    breaker,
    breaker_states,
    classify,
    error_boundary,
    public_error,
    reset_breakers,
    retry_policy,
    retrying,
)
from graphrun.testing import (
    Faults,
    FaultyChatModel,
    InternalServerError,
    ModelFault,
    RateLimitError,
    StreamBroken,
    with_faults_from_env,
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


def test_a_probe_that_never_reports_back_is_replaced_after_the_reset_timeout() -> None:
    clock = Clock()
    b = CircuitBreaker("p/stuck", failure_threshold=1, reset_timeout_s=5, clock=clock)
    b.record_failure(_server_error())
    clock.now = 5
    b.before_call()  # a probe that hangs, or is cancelled without a word
    with pytest.raises(CircuitOpen, match="probe"):
        b.before_call()
    clock.now = 10
    b.before_call()  # a fresh probe goes through
    b.record_success()
    assert state(b) == "closed"


def test_a_cancelled_probe_frees_the_next_call_and_an_answering_provider_closes_the_breaker() -> None:
    clock = Clock()
    b = CircuitBreaker("p/answers", failure_threshold=1, reset_timeout_s=5, clock=clock)
    b.record_failure(_server_error())
    clock.now = 5
    b.before_call()
    b.record_failure(asyncio.CancelledError())
    assert state(b) == "half_open"
    b.before_call()  # the cancelled probe's turn passed to this one
    b.record_failure(openai.BadRequestError("x", response=_response(400), body=None))
    assert state(b) == "closed", "a 400 is the provider answering: it is up"


def _chat(model: BaseChatModel, guard: BreakerGuard, text: str = "hi") -> BaseMessage:
    return asyncio.run(model.ainvoke(text, {"callbacks": [guard]}))


def test_the_breaker_guard_opens_per_provider_and_model_and_refuses_before_the_call() -> None:
    reset_breakers()
    down = FaultyChatModel(
        inner=FakeListChatModel(responses=["ok"]), faults=Faults.parse("outage=1,model=m-down")
    )
    up = FaultyChatModel(inner=FakeListChatModel(responses=["ok"]), faults=Faults.parse("model=m-up"))
    guard = BreakerGuard(failure_threshold=2, window_s=60, reset_timeout_s=30)
    for _ in range(2):
        with pytest.raises(InternalServerError):
            _chat(down, guard)
    with pytest.raises(CircuitOpen, match="fault/m-down is open"):
        _chat(down, guard)

    assert down.calls == ["error", "error"], "the refused call never reached the model"
    assert _chat(up, guard).content == "ok", "another model of the provider has its own breaker"
    assert breaker_states() == {"fault/m-down": "open", "fault/m-up": "closed"}
    reset_breakers()


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (openai.RateLimitError("slow down, key sk-123", response=_response(429), body=None), "rate_limited"),
        (openai.InternalServerError("boom", response=_response(503), body=None), "provider_error"),
        (httpx.ConnectError("refused"), "provider_unreachable"),
        (TimeoutError("read timed out after 30s on 10.0.0.7"), "timeout"),
        (openai.AuthenticationError("bad key", response=_response(401), body=None), "provider_auth"),
        (CircuitOpen("circuit x/y is open"), "circuit_open"),
        (ValueError("password=hunter2"), "graph_error"),
        (KeyError("messages"), "graph_error"),
    ],
)
def test_public_errors_are_stable_codes_with_messages_that_hold_nothing_of_the_cause(
    exc: BaseException, code: str
) -> None:
    got, message = public_error(exc)
    assert got == code
    assert str(exc) not in message


# ---------------------------------------------------------------- the fault model


def test_faults_parse_every_documented_key() -> None:
    faults = Faults.parse(
        "latency_ms=50-400,slow=0.1,slow_ms=2000,rate_limit=0.2,retry_after=3,error=0.05,hang=0.01,"
        "hang_s=9,break=0.1,outage=true,script=rate_limit+ok,seed=7,model=m"
    )
    assert faults == Faults(
        latency_ms=(50.0, 400.0),
        slow=0.1,
        slow_ms=2000.0,
        rate_limit=0.2,
        retry_after=3.0,
        error=0.05,
        hang=0.01,
        hang_s=9.0,
        break_=0.1,
        outage=True,
        script=("rate_limit", "ok"),
        seed=7,
        model="m",
    )
    assert Faults.of({"latency_ms": [5, 1], "break": 0.5}) == Faults(latency_ms=(1.0, 5.0), break_=0.5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rate_limits=0.1", "unknown key 'rate_limits'"),
        ("error=2", "share of calls"),
        ("script=ok+explode", "explode"),
        ("latency_ms=fast", "bad latency_ms"),
        ("outage", "not key=value"),
    ],
)
def test_bad_faults_are_refused_naming_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults.parse(spec)


def test_the_fault_model_fails_as_providers_do_and_its_errors_classify_so() -> None:
    model = FaultyChatModel(
        inner=FakeListChatModel(responses=["one two three four"]),
        faults=Faults.parse("script=rate_limit+error+break+ok,retry_after=4"),
    )
    failures = []
    for _ in range(3):
        with pytest.raises(ModelFault) as caught:
            asyncio.run(_collect(model))
        failures.append(classify(caught.value))

    assert [(f.kind, f.status, f.retry_after) for f in failures] == [
        ("rate_limit", 429, 4.0),
        ("server", 503, None),
        ("connection", None, None),
    ]
    assert "".join(asyncio.run(_collect(model))) == "one two three four"
    assert model.calls == ["rate_limit", "error", "break", "ok"]


def test_a_broken_stream_sends_part_of_the_answer_first() -> None:
    model = FaultyChatModel(
        inner=FakeListChatModel(responses=["abcdef"]), faults=Faults.parse("script=break")
    )
    seen: list[str] = []

    async def read() -> None:
        async for chunk in model.astream("hi"):
            seen.append(str(chunk.content))

    with pytest.raises(StreamBroken):
        asyncio.run(read())
    assert 0 < len("".join(seen)) < len("abcdef")


def test_shares_of_faults_follow_the_seeded_random_draws() -> None:
    model = FaultyChatModel(
        inner=FakeListChatModel(responses=["x"]), faults=Faults.parse("rate_limit=0.3,seed=1")
    )
    for _ in range(2000):
        with contextlib.suppress(RateLimitError):
            model.invoke("hi")
    share = model.calls.count("rate_limit") / len(model.calls)
    assert 0.25 < share < 0.35
    assert set(model.calls) == {"ok", "rate_limit"}


def test_faults_come_from_the_environment_and_a_file_read_again_when_it_changes(tmp_path: Path) -> None:
    inner = FakeListChatModel(responses=["x"])
    assert with_faults_from_env(inner, {}) is inner
    path = tmp_path / "faults.json"
    path.write_text("{}")
    model = with_faults_from_env(inner, {"GRAPHRUN_FAULTS_FILE": str(path)})
    assert isinstance(model, FaultyChatModel)
    assert model.invoke("hi").content == "x"
    path.write_text('{"outage": true, "model": "from-file"}')
    os.utime(path, (time.time() + 5, time.time() + 5))
    with pytest.raises(InternalServerError):
        model.invoke("hi")
    path.write_text("{not json")  # half-written: what was in force stays
    os.utime(path, (time.time() + 10, time.time() + 10))
    with pytest.raises(InternalServerError):
        model.invoke("hi")
    spec = with_faults_from_env(inner, {"GRAPHRUN_FAULTS": "script=error"})
    with pytest.raises(InternalServerError):
        spec.invoke("hi")
    with pytest.raises(ValueError, match="unknown key"):
        with_faults_from_env(inner, {"GRAPHRUN_FAULTS": "nope=1"})


async def _collect(model: BaseChatModel) -> list[str]:
    return [str(chunk.content) async for chunk in model.astream("hi")]


# ---------------------------------------------------------------- a run's own time limits


def test_run_timeouts_come_from_context_or_configurable() -> None:
    assert run_timeouts({}, {}) == Timeouts()
    assert run_timeouts({"configurable": {"run_timeout_s": 30}}, {}) == Timeouts(30.0, {})
    got = run_timeouts({"configurable": {"node_timeout_s": 5}}, {"node_timeout_s": {"model": 2, "*": 9}})
    assert got.node_limit("model") == 2.0
    assert got.node_limit("tools") == 9.0
    assert run_timeouts({}, {"node_timeout_s": 5}).node_limit("any") == 5.0
    assert run_timeouts({}, {"node_timeout_s": {"model": 1}}).node_limit("tools") is None


@pytest.mark.parametrize(
    "context",
    [{"run_timeout_s": 0}, {"run_timeout_s": "1"}, {"node_timeout_s": {"m": None}}, {"run_timeout_s": 1e9}],
)
def test_bad_run_timeouts_are_refused(context: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidRequest, match="timeout_s"):
        run_timeouts({}, context)


# ---------------------------------------------------------------- the error boundary mark


def test_an_error_boundary_survives_the_copies_langgraph_makes() -> None:
    from langgraph.graph import START, MessagesState, StateGraph

    graph = StateGraph(MessagesState).add_node("n", lambda s: {}).add_edge(START, "n").compile()
    marked = error_boundary(graph, "sorry")

    assert boundary_of(graph) is None
    assert boundary_of(marked) == ErrorBoundary("sorry", "messages")
    assert boundary_of(marked.copy(update={"checkpointer": None})) == ErrorBoundary("sorry", "messages")
    assert boundary_of(marked.with_config(recursion_limit=5)) == ErrorBoundary("sorry", "messages")
    assert marked.invoke({"messages": []}) == {"messages": []}, "the graph itself runs unchanged"
    with pytest.raises(ValueError, match="empty"):
        error_boundary(graph, " ")


def test_rate_limits_do_not_open_a_breaker() -> None:
    b = CircuitBreaker("p/throttled", failure_threshold=2)
    for _ in range(5):
        b.record_failure(openai.RateLimitError("slow down", response=_response(429), body=None))
    assert state(b) == "closed", "a throttling provider is up: Retry-After handles it"
