"""Error handling as a client and an operator meet it, against a real server in both modes, with
``graphrun.testing.FaultyChatModel`` behind the graphs (tests/resilience/graphs.py): a 429 then a success
succeeds after the retry the provider's ``Retry-After`` asked for; a model that keeps failing opens its
circuit, seen in ``/metrics`` and ``/ready`` (which stays 200) and refused at once afterwards; a hung model
ends the run ``timeout`` at the node's or the run's own limit, named; an error boundary answers in the thread
while the log keeps the (masked) cause; and no secret of an exception reaches the client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.embedded import Server, embedded
from tests.harness.ports import free_port
from tests.harness.targets import MODES, started
from tests.harness.waiting import eventually
from tests.resilience.graphs import BOUNDARY_MESSAGE, SECRET

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

CONFIG = Path(__file__).resolve().parent / "langgraph.json"
ENV = {
    "GRAPHRUN_BREAKER_FAILURES": "2",
    "GRAPHRUN_BREAKER_RESET_S": "600",  # stays open for the whole module
    "GRAPHRUN_HEARTBEAT_INTERVAL_S": "1",
    "GRAPHRUN_LOG_LEVEL": "INFO",
}


@dataclass
class Topology:
    mode: str
    url: str
    worker_metrics_url: str
    log_dir: Path

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for path in sorted(self.log_dir.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    lines.append(json.loads(line))
        return lines

    def all_output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@pytest.fixture(scope="module", params=MODES)
def topology(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    base = tmp_path_factory.mktemp(f"resilience-{request.param}")
    metrics_port = free_port()
    env = ENV if request.param == "embedded" else {**ENV, "GRAPHRUN_METRICS_PORT": str(metrics_port)}
    with started(request.param, base, CONFIG, env, name="resilience") as server:
        metrics_url = server.url if request.param == "embedded" else f"http://127.0.0.1:{metrics_port}"
        yield Topology(request.param, server.url, metrics_url, server.log_dir)


@pytest.fixture
async def http(topology: Topology) -> Any:
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as client:
        yield client


async def _wait(http: httpx.AsyncClient, graph: str, **body: Any) -> tuple[str, str, dict[str, Any]]:
    """Create a thread, run ``graph`` on it to the end; (thread id, run id, the join's answer)."""
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    body.setdefault("input", {"messages": [{"role": "user", "content": "hi"}]})
    created = await http.post(f"/threads/{thread_id}/runs", json={"assistant_id": graph, **body})
    assert created.status_code == 200, created.text
    run_id = created.json()["run_id"]
    joined = await http.get(f"/threads/{thread_id}/runs/{run_id}/join")
    assert joined.status_code == 200, joined.text
    return thread_id, run_id, joined.json()


async def _run_status(http: httpx.AsyncClient, thread_id: str, run_id: str) -> str:
    return str((await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"])


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


async def test_a_429_then_success_succeeds_after_waiting_what_retry_after_asked(
    topology: Topology, http: httpx.AsyncClient
) -> None:
    faults = "script=rate_limit+ok,retry_after=0.6"
    thread_id, run_id, out = await _wait(http, "retried", input={"messages": [], "faults": faults})

    assert "__error__" not in out, out
    assert await _run_status(http, thread_id, run_id) == "success"
    assert out["calls"] == 2, "one rate-limited call, then the one that answered"
    assert out["gaps"][0] >= 0.6, f"the retry came {out['gaps'][0]:.3f}s after the 429, before Retry-After"
    assert out["messages"][-1]["content"] == "all good"
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{topology.worker_metrics_url}/metrics")).text
    retries = _samples(text, "graphrun_retries_total")
    assert any(labels == {"kind": "rate_limit", "via": "decorator"} and v >= 1 for labels, v in retries)


async def test_a_model_that_keeps_failing_opens_its_circuit_and_later_calls_fail_fast(
    topology: Topology, http: httpx.AsyncClient
) -> None:
    for _ in range(2):  # GRAPHRUN_BREAKER_FAILURES
        _, _, out = await _wait(http, "outage")
        assert out["__error__"]["error"] == "InternalServerError", out

    thread_id, run_id, out = await _wait(http, "outage")

    assert out["__error__"]["error"] == "CircuitOpen", out
    assert "fault/outage-model" in out["__error__"]["message"]
    assert await _run_status(http, thread_id, run_id) == "error"
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{topology.worker_metrics_url}/metrics")).text
    states = _samples(text, "graphrun_circuit_breaker_state")
    assert ({"provider": "fault", "model": "outage-model"}, 2.0) in states, states

    async def ready() -> httpx.Response:
        return await http.get("/ready")

    answer = await eventually(
        ready,
        lambda r: r.json().get("circuit_breakers", {}).get("fault/outage-model", {}).get("state") == "open",
        timeout_s=15,
        what="/ready to report the open circuit",
    )
    assert answer.status_code == 200, "an open circuit is reported, not a reason to leave rotation"
    assert answer.json()["status"] == "ok"
    (worker_state,) = answer.json()["circuit_breakers"]["fault/outage-model"]["workers"].values()
    assert worker_state == "open"


async def test_a_hung_node_ends_the_run_timeout_at_its_own_limit_naming_the_node(
    http: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    config = {"configurable": {"node_timeout_s": {"model": 1}}}
    thread_id, run_id, out = await _wait(http, "hangs", config=config)
    elapsed = time.monotonic() - started

    assert await _run_status(http, thread_id, run_id) == "timeout"
    assert out["__error__"] == {
        "error": "TimeoutError",
        "message": "node 'model' exceeded its node_timeout_s of 1s",
    }
    assert elapsed < 30, "the node's limit ended it, not the model's hour-long hang"


async def test_a_runs_own_timeout_from_its_context_names_the_node_it_stopped(http: httpx.AsyncClient) -> None:
    thread_id, run_id, out = await _wait(http, "hangs", context={"run_timeout_s": 1})

    assert await _run_status(http, thread_id, run_id) == "timeout"
    assert out["__error__"]["message"] == "run exceeded its run_timeout_s of 1s in node 'model'"


async def test_an_assistants_node_timeout_applies_to_its_runs(http: httpx.AsyncClient) -> None:
    assistant = await http.post(
        "/assistants", json={"graph_id": "hangs", "config": {"configurable": {"node_timeout_s": 1}}}
    )
    assert assistant.status_code == 200, assistant.text

    thread_id, run_id, out = await _wait(http, assistant.json()["assistant_id"])

    assert await _run_status(http, thread_id, run_id) == "timeout"
    assert "node 'model'" in out["__error__"]["message"]


@pytest.mark.parametrize(
    "config",
    [
        {"configurable": {"run_timeout_s": 0}},
        {"configurable": {"run_timeout_s": "soon"}},
        {"configurable": {"node_timeout_s": {"model": -1}}},
        {"configurable": {"node_timeout_s": True}},
    ],
    ids=["zero", "text", "negative-node", "bool"],
)
async def test_a_bad_timeout_is_refused_and_nothing_is_written(
    http: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]

    answer = await http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "hangs", "config": config})
    refused = await http.post("/assistants", json={"graph_id": "hangs", "config": config})

    assert answer.status_code == 422, answer.text
    assert "timeout_s" in answer.json()["detail"]
    assert refused.status_code == 422, refused.text
    assert (await http.get(f"/threads/{thread_id}/runs")).json() == []


async def test_an_error_boundary_answers_in_the_thread_and_the_log_keeps_the_masked_cause(
    topology: Topology, http: httpx.AsyncClient
) -> None:
    thread_id, run_id, out = await _wait(http, "guarded")

    assert "__error__" not in out, out
    assert out["messages"][-1]["content"] == BOUNDARY_MESSAGE
    assert out["messages"][-1]["type"] == "ai"
    assert await _run_status(http, thread_id, run_id) == "success"
    thread = (await http.get(f"/threads/{thread_id}")).json()
    assert thread["status"] == "idle"
    assert thread["error"] is None
    state = (await http.get(f"/threads/{thread_id}/state")).json()
    assert state["next"] == [], "nothing left pending: the next message starts afresh"

    async def handled() -> list[dict[str, Any]]:
        return [
            line
            for line in topology.log_lines()
            if line.get("event") == "run_error_handled" and line.get("run_id") == run_id
        ]

    (line,) = await eventually(handled, bool, timeout_s=10, what="the run_error_handled log line")
    assert line["error"] == "ValueError"
    assert "the vendor refused api key" in line["message"]
    assert SECRET not in topology.all_output()

    # The thread goes on: a second message runs (and is answered by the boundary again).
    again = await http.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": "guarded", "input": {"messages": [{"role": "user", "content": "again"}]}},
    )
    assert [m["content"] for m in again.json()["messages"]][-2:] == ["again", BOUNDARY_MESSAGE]


async def test_no_secret_of_an_exception_reaches_the_client(
    topology: Topology, http: httpx.AsyncClient
) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "unguarded", "input": {"messages": []}, "stream_mode": ["values", "updates"]}

    streamed = await http.post(f"/threads/{thread_id}/runs/stream", json=body)
    waited = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    thread = await http.get(f"/threads/{thread_id}")

    for answer in (streamed, waited, thread):
        assert SECRET not in answer.text
    assert "event: error" in streamed.text
    assert waited.json()["__error__"]["error"] == "ValueError"
    assert "the vendor refused api key" in waited.json()["__error__"]["message"]
    assert SECRET not in topology.all_output()


@pytest.fixture(scope="module")
def safe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {**ENV, "GRAPHRUN_ERROR_DETAIL": "safe"}
    with embedded(tmp_path_factory.mktemp("resilience-safe"), CONFIG, env) as server:
        yield server


async def test_in_safe_mode_a_client_gets_a_stable_code_and_a_fixed_message(safe_server: Server) -> None:
    async with httpx.AsyncClient(base_url=safe_server.url, timeout=60) as http:
        _, run_id, graph_error = await _wait(http, "unguarded", input={"messages": []})
        _, _, provider_error = await _wait(http, "outage")
        _, _, timed_out = await _wait(http, "hangs", context={"node_timeout_s": 1})

    assert graph_error["__error__"] == {
        "error": "graph_error",
        "message": f"the run failed in the graph (run {run_id})",
    }
    assert provider_error["__error__"]["error"] == "provider_error"
    assert "503" not in provider_error["__error__"]["message"]
    assert "injected" not in provider_error["__error__"]["message"]
    assert timed_out["__error__"] == {
        "error": "timeout",
        "message": "node 'model' exceeded its node_timeout_s of 1s",
    }
    assert "the vendor refused api key" in safe_server.logs(), "the cause is in the server's log"
