"""Observability as an operator meets it, against a real server in both modes: one trace per request
across the API and the worker (exported over OTLP to a local receiver), ``/metrics`` scraped and parsed,
JSON log lines with the ids that apply, a planted secret found nowhere, and LangSmith and Langfuse
switched on by their environment variables alone (fake receivers at the remote edge)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.ports import free_port
from tests.harness.targets import MODES, started
from tests.harness.waiting import eventually
from tests.observability._receivers import Receiver, Span

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

CONFIG = Path(__file__).resolve().parent / "langgraph.json"
SECRET = "sk-proj-PLANTEDsecret0123456789abcdef"
UUID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Topology:
    mode: str
    url: str
    worker_metrics_url: str
    otlp: Receiver
    langsmith: Receiver
    langfuse: Receiver
    log_texts: Any  # () -> list[str]: every process's stdout

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.log_texts():
            for line in text.splitlines():
                if line.startswith("{"):
                    lines.append(json.loads(line))
        return lines


def _env(otlp: Receiver, langsmith: Receiver, langfuse: Receiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp.url}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "GRAPHRUN_NODE_IO": "full",
        "GRAPHRUN_LOG_LEVEL": "INFO",
        "LANGSMITH_TRACING": "true",
        "LANGCHAIN_TRACING_V2": "true",  # the test harness turns it off for every other test
        "LANGSMITH_ENDPOINT": langsmith.url,
        "LANGSMITH_API_KEY": "lsv2_pt_00000000000000000000000000000000_0000000000",
        "LANGFUSE_PUBLIC_KEY": "pk-lf-00000000-0000-0000-0000-000000000000",
        "LANGFUSE_SECRET_KEY": "sk-lf-00000000-0000-0000-0000-000000000000",
        "LANGFUSE_HOST": langfuse.url,
        "LANGFUSE_FLUSH_INTERVAL": "0.2",
    }


@pytest.fixture(scope="module", params=MODES)
def topology(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    receivers = [Receiver().start() for _ in range(3)]
    otlp, langsmith, langfuse = receivers
    env = _env(otlp, langsmith, langfuse)
    base = tmp_path_factory.mktemp(f"observability-{request.param}")
    metrics_port = free_port()
    if request.param == "production":
        env["GRAPHRUN_METRICS_PORT"] = str(metrics_port)
    try:
        with started(request.param, base, CONFIG, env, name="observability") as server:
            logs = lambda: [p.read_text() for p in sorted(server.log_dir.glob("*.stdout.log"))]  # noqa: E731
            metrics_url = server.url if request.param == "embedded" else f"http://127.0.0.1:{metrics_port}"
            yield Topology(request.param, server.url, metrics_url, otlp, langsmith, langfuse, logs)
    finally:
        for receiver in receivers:
            receiver.stop()


def _traceparent() -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    return trace_id, f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


async def _run(
    http: httpx.AsyncClient, text: str, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "observed", "input": {"messages": [{"role": "user", "content": text}], **extra}}
    return await http.post(f"/threads/{thread_id}/runs/wait", json=body, headers=headers or {})


async def _spans_of(topology: Topology, trace_id: str, *, names: set[str]) -> list[Span]:
    async def probe() -> list[Span]:
        return [s for s in topology.otlp.spans() if s.trace_id == trace_id]

    return await eventually(
        probe, lambda spans: names <= {s.name for s in spans}, timeout_s=20, what=f"spans {names}"
    )


async def test_one_request_is_one_trace_from_the_api_through_the_run_to_each_model_call(
    topology: Topology,
) -> None:
    trace_id, traceparent = _traceparent()
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as http:
        response = await _run(http, "hello trace", {"traceparent": traceparent})
    assert response.status_code == 200, response.text
    assert response.headers["x-trace-id"] == trace_id, "the response names the trace it continued"
    assert response.headers["x-request-id"]

    names = {
        "POST /threads/{thread_id}/runs/wait",
        "run",
        "node chat",
        "chat fake-model-1",
        "execute_tool shout",
    }
    spans = {s.name: s for s in await _spans_of(topology, trace_id, names=names)}
    request, run, node, model, tool = (
        spans[n]
        for n in [
            "POST /threads/{thread_id}/runs/wait",
            "run",
            "node chat",
            "chat fake-model-1",
            "execute_tool shout",
        ]
    )
    if topology.mode == "production":  # the trace crosses processes
        assert request.resource["graphrun.role"] == "api"
        assert run.resource["graphrun.role"] == "worker"
    assert run.attributes["graphrun.graph_id"] == "observed"
    assert run.attributes["graphrun.attempt"] == 1
    assert run.attributes["graphrun.queue_wait_s"] >= 0
    assert node.parent_id == run.span_id
    assert model.parent_id == node.span_id
    assert tool.parent_id == node.span_id
    assert model.attributes["gen_ai.provider.name"] == "fakeprovider"
    assert model.attributes["gen_ai.request.model"] == "fake-model-1"
    assert model.attributes["gen_ai.usage.input_tokens"] == 2
    assert model.attributes["gen_ai.usage.output_tokens"] == 2
    assert model.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert [name for name, _ in node.events] == ["node.input", "node.output"]


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]


async def test_metrics_count_requests_runs_nodes_and_model_tokens_without_ids(topology: Topology) -> None:
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as http:
        assert (await _run(http, "count these four words")).status_code == 200
        api = _samples((await http.get("/metrics")).text)

    async def worker() -> list[tuple[str, dict[str, str], float]]:
        async with httpx.AsyncClient(timeout=10) as client:
            return _samples((await client.get(f"{topology.worker_metrics_url}/metrics")).text)

    def value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
        return sum(v for n, got, v in samples if n == name and labels.items() <= got.items())

    assert (
        value(api, "graphrun_http_requests_total", route="/threads/{thread_id}/runs/wait", status="200") >= 1
    )
    assert value(api, "graphrun_http_request_duration_seconds_count", route="/threads") >= 1
    samples = await eventually(
        worker,
        lambda s: value(s, "graphrun_runs_total", graph_id="observed", status="success") >= 1,
        what="runs",
    )
    assert (
        value(samples, "graphrun_node_duration_seconds_count", graph_id="observed", node="chat", outcome="ok")
        >= 1
    )
    assert (
        value(
            samples, "graphrun_model_calls_total", provider="fakeprovider", model="fake-model-1", outcome="ok"
        )
        >= 1
    )
    assert value(samples, "graphrun_model_tokens_total", model="fake-model-1", direction="input") >= 4
    assert value(samples, "graphrun_model_tokens_total", model="fake-model-1", direction="output") >= 4
    assert value(samples, "graphrun_run_duration_seconds_count", graph_id="observed") >= 1
    assert value(samples, "graphrun_queue_wait_seconds_count", graph_id="observed") >= 1
    assert any(n == "graphrun_runs_in_flight" for n, _, _ in samples)
    if topology.mode == "production":
        assert any(n == "graphrun_db_pool_connections" for n, _, _ in samples)
    for name, labels, _ in api + samples:
        assert not any(UUID_LIKE.search(v) for v in labels.values()), f"an id as a label of {name}: {labels}"


async def test_every_log_line_is_json_with_the_ids_that_apply(topology: Topology) -> None:
    trace_id, traceparent = _traceparent()
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as http:
        response = await _run(
            http, "log me", {"traceparent": traceparent, "x-request-id": "req-from-client-1"}
        )
    assert response.headers["x-request-id"] == "req-from-client-1"
    run_id = response.headers["content-location"].rsplit("/", 1)[-1]

    def mine(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("run_id") == run_id]

    lines = await eventually(
        lambda: _now(topology.log_lines()),
        lambda ls: any(line["event"] == "run_finished" for line in mine(ls)),
        what="the run's log lines",
    )
    for line in lines:
        assert {"event", "level", "logger", "timestamp"} <= line.keys(), line
    run_lines = mine(lines)
    assert {line["event"] for line in run_lines} >= {
        "run_started",
        "node_input",
        "node_output",
        "run_finished",
    }
    for line in run_lines:
        assert line["trace_id"] == trace_id, line
        assert line["attempt"] == 1
        assert line["graph_id"] == "observed"
        assert {"thread_id", "assistant_id", "span_id"} <= line.keys()
    request = [line for line in lines if line.get("request_id") == "req-from-client-1"]
    assert any(
        line["event"] == "http_request" and line["route"] == "/threads/{thread_id}/runs/wait"
        for line in request
    )
    assert all(line["trace_id"] == trace_id for line in request)


async def _now(value: Any) -> Any:
    return value


async def test_a_planted_secret_reaches_no_log_span_or_client_error(topology: Topology) -> None:
    trace_id, traceparent = _traceparent()
    headers = {"traceparent": traceparent, "authorization": f"Bearer {SECRET}", "x-api-key": SECRET}
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as http:
        ok = await _run(http, f"my key is {SECRET}", headers)
        failed = await _run(http, "fail please", headers, fail=f"key {SECRET} was revoked")
    assert ok.status_code == 200
    assert "the provider refused" in failed.text
    assert SECRET not in failed.text, "the client-visible error is redacted"
    await _spans_of(topology, trace_id, names={"run", "node chat"})
    await eventually(
        lambda: _now([s for s in topology.otlp.spans() if s.trace_id == trace_id and s.name == "run"]),
        lambda runs: len(runs) == 2,
        what="both runs' spans",
    )
    exported = topology.otlp.bodies()
    assert b"the provider refused" in exported, "the failure is in the trace, redacted"
    assert SECRET.encode() not in exported
    logs = "\n".join(topology.log_texts())
    assert "the provider refused" in logs
    assert SECRET not in logs


async def test_langsmith_and_langfuse_trace_runs_when_their_variables_are_set(topology: Topology) -> None:
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as http:
        response = await _run(http, "trace me remotely")
        info = (await http.get("/info")).json()
    assert info["flags"]["langsmith"] is True
    assert info["flags"]["langfuse"] is True
    assert info["flags"]["opentelemetry"] is True
    run_id = response.headers["content-location"].rsplit("/", 1)[-1]
    thread_id = response.headers["content-location"].split("/")[2]
    await eventually(
        lambda: _now(topology.langsmith.bodies()),
        lambda body: run_id.encode() in body,
        what="LangSmith to get the run",
    )
    await eventually(
        lambda: _now(topology.langfuse.bodies()),
        lambda body: thread_id.encode() in body,
        what="Langfuse to get the session",
    )
    assert all(r.path.startswith("/api/public") for r in topology.langfuse.requests)


async def test_stats_count_the_runs_turns_and_tokens_of_a_window(topology: Topology) -> None:
    async with httpx.AsyncClient(base_url=topology.url, timeout=60) as http:
        before = (await http.get("/stats", params={"hours": 1, "graph_id": "observed"})).json()
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        for text in ("one turn", "two turns"):
            body = {"assistant_id": "observed", "input": {"messages": [{"role": "user", "content": text}]}}
            assert (await http.post(f"/threads/{thread_id}/runs/wait", json=body)).status_code == 200
        assert (await _run(http, "another thread")).status_code == 200
        after = (await http.get("/stats", params={"hours": 1, "graph_id": "observed"})).json()
        unknown = await http.get("/stats", params={"graph_id": "nope"})
        bad = await http.get("/stats", params={"hours": 0})

    assert after["runs"] - before["runs"] == 3
    assert after["threads_active"] - before["threads_active"] == 2
    assert after["runs_by_status"]["success"] - before["runs_by_status"].get("success", 0) == 3
    assert after["turns_per_thread"]["p95"] >= 2
    assert 0 < after["latency_s"]["p50"] <= after["latency_s"]["p95"] <= after["latency_s"]["p99"] < 60
    model = "fakeprovider/fake-model-1"
    gained = after["tokens_by_model"][model]["input"] - before["tokens_by_model"].get(model, {}).get(
        "input", 0
    )
    assert gained >= 3 * 2, "each run's model calls' tokens, stored with the run"
    assert after["runs_by_status"].get("error", 0) == before["runs_by_status"].get("error", 0)
    assert after["error_rate"] is not None
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["detail"]
    assert bad.status_code == 422

    cli = await _graphrun_stats(topology.url, "observed")
    assert cli.returncode == 0, cli.stderr
    assert "threads active" in cli.stdout
    assert model in cli.stdout
    refused = await _graphrun_stats(topology.url, "nope")
    assert refused.returncode == 2
    assert "404" in refused.stderr


async def _graphrun_stats(url: str, graph_id: str) -> subprocess.CompletedProcess[str]:
    """``graphrun stats`` as a person runs it, against ``url``."""
    argv = [sys.executable, "-m", "graphrun", "stats", "--url", url, "--graph-id", graph_id]
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
    )
