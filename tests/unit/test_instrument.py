"""graphrun.instrument: spans, metrics and recorded node I/O of a graph run in process, read back from
OpenTelemetry's in-memory exporter and the Prometheus registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from typing_extensions import TypedDict

from graphrun import metrics
from graphrun.instrument import RunInstrument
from graphrun.telemetry import tracer
from tests.observability.graphs import observed

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_graphrun_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._graphrun_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    return _EXPORTER


def _run(graph: Any, state: Any, node_io: str = "off", config: Any = None) -> list[ReadableSpan]:
    async def go() -> None:
        with tracer.start_as_current_span("run"):
            instrument = RunInstrument("g", node_io, 60)
            await graph.ainvoke(state, {"callbacks": [instrument], **(config or {})})

    asyncio.run(go())
    return list(_EXPORTER.get_finished_spans())


def _sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_node_holds_its_model_and_tool_calls_with_genai_attributes(spans: InMemorySpanExporter) -> None:
    before = _sample(
        "graphrun_model_tokens_total", provider="fakeprovider", model="fake-model-1", direction="input"
    )
    by_name = {
        s.name: s for s in _run(observed, {"messages": [{"role": "user", "content": "one two three"}]})
    }
    run, node, model = by_name["run"], by_name["node chat"], by_name["chat fake-model-1"]
    tool = by_name["execute_tool shout"]
    assert node.parent is not None
    assert node.parent.span_id == run.context.span_id
    assert model.parent is not None
    assert model.parent.span_id == node.context.span_id
    assert tool.parent is not None
    assert tool.parent.span_id == node.context.span_id
    assert model.attributes is not None
    assert model.attributes["gen_ai.usage.input_tokens"] == 3
    assert model.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    after = _sample(
        "graphrun_model_tokens_total", provider="fakeprovider", model="fake-model-1", direction="input"
    )
    assert after - before == 3
    assert _sample("graphrun_node_duration_seconds_count", graph_id="g", node="chat", outcome="ok") >= 1


def test_a_failing_node_is_an_error_span_with_a_redacted_message(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError):
        _run(observed, {"messages": [{"role": "user", "content": "x"}], "fail": "token sk-abcdefghijklmnopq"})
    node = next(s for s in _EXPORTER.get_finished_spans() if s.name == "node chat")
    assert node.status.status_code == StatusCode.ERROR
    assert "sk-abcdefghijklmnopq" not in (node.status.description or "")
    assert "the provider refused" in (node.status.description or "")


class Asked(TypedDict, total=False):
    answer: Any


def _ask(state: Asked) -> Asked:
    return {"answer": interrupt("ok?")}


def test_an_interrupt_ends_its_node_without_an_error(spans: InMemorySpanExporter) -> None:
    builder = StateGraph(Asked)
    builder.add_node("ask", _ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    _run(graph, {}, config={"configurable": {"thread_id": "t"}})
    node = next(s for s in _EXPORTER.get_finished_spans() if s.name == "node ask")
    assert node.status.status_code != StatusCode.ERROR


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("summary", "{'messages': 'list[1]'}"), ("full", "my password=***")],
)
def test_node_io_is_recorded_as_asked_and_redacted(
    spans: InMemorySpanExporter, mode: str, expected: str
) -> None:
    _run(observed, {"messages": [{"role": "user", "content": "my password=hunter2hunter2"}]}, node_io=mode)
    node = next(s for s in _EXPORTER.get_finished_spans() if s.name == "node chat")
    recorded = {e.name: str((e.attributes or {})["value"]) for e in node.events}
    assert set(recorded) == {"node.input", "node.output"}
    assert expected in recorded["node.input"]
    assert "hunter2hunter2" not in recorded["node.input"]
    if mode == "full":
        assert recorded["node.output"].endswith("chars)"), "cut to the configured size"


def test_label_values_are_bounded() -> None:
    for i in range(metrics._MAX_VALUES + 5):
        metrics.bounded("test-label", f"value-{i}")
    assert metrics.bounded("test-label", "value-0") == "value-0"
    assert metrics.bounded("test-label", "one-too-many") == "other"
