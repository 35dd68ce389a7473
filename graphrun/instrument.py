"""What a run does inside, seen through LangChain's callbacks: a span per node, model call and tool call
(GenAI semantic-convention attributes: provider, model, tokens, finish reason), node and model metrics,
and, when ``GRAPHRUN_NODE_IO`` asks, each node's input and output in the logs and as span events,
redacted before they are written.

One ``RunInstrument`` per run attempt, passed in the run's ``callbacks``; LangChain calls it for every
runnable inside the graph, so any LangChain chat model counts, whatever its provider.

Written here rather than taken from a library: the OpenTelemetry instrumentations for LangChain on PyPI
(e.g. OpenLLMetry's) make spans only, and the metrics and the recorded node I/O need the same callbacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from graphrun import encoding, errors, metrics, redact
from graphrun.resilience import model_identity, serialized_name
from graphrun.telemetry import tracer

log = structlog.get_logger("graphrun.node")


@dataclass
class _Open:
    span: Span
    started: float
    kind: str  # node, model, tool
    name: str
    labels: tuple[str, str] = ("", "")  # model calls: (provider, model)
    task: tuple[Any, str] | None = None  # nodes: (checkpoint namespace, node)


@dataclass(eq=False)  # LangChain keeps handlers in sets: hashable by identity
class RunInstrument(BaseCallbackHandler):
    graph_id: str
    node_io: str = "off"  # off, summary or full
    max_chars: int = 2000
    _open: dict[UUID, _Open] = field(default_factory=dict)
    _tasks: dict[tuple[Any, str], UUID] = field(default_factory=dict)  # the node runs open now
    _parents: dict[UUID, UUID | None] = field(default_factory=dict)  # open chains -> their parent run
    # Tokens by "<provider>/<model>": {"input": n, "output": n}, stored with the run (analytics).
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    # The nodes that started in this attempt (subgraphs' included), ``__start__`` (the input) among them.
    started: set[str] = field(default_factory=set)

    # Called in the event loop, not on a thread: everything here is quick and must see the run's context.
    run_inline = True
    raise_error = False

    def __post_init__(self) -> None:
        super().__init__()
        # The run's span, current where the run begins: the parent of its top-level spans. (Not the span
        # current in a callback: another tracer, such as Langfuse's, may have made its own current.)
        self._root = trace.get_current_span()

    def running_nodes(self) -> list[tuple[str, float]]:
        """The nodes executing now (subgraphs' included): name and ``time.perf_counter()`` at start."""
        return [(o.name, o.started) for o in list(self._open.values()) if o.kind == "node"]

    # ------------------------------------------------------------ nodes

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._parents[run_id] = parent_run_id
        meta = metadata or {}
        node = meta.get("langgraph_node")
        if not node or (name or serialized_name(serialized)) != node:
            return  # a runnable inside a node, or the graph itself
        task = (meta.get("langgraph_checkpoint_ns"), node)
        if task in self._tasks:
            return  # a runnable of the node's own name inside it (a node's function wrapped again)
        self._tasks[task] = run_id
        self.started.add(node)
        attributes = {
            "graphrun.graph_id": self.graph_id,
            "graphrun.node": node,
            "graphrun.step": (metadata or {}).get("langgraph_step", -1),
        }
        span = self._start(f"node {node}", parent_run_id, attributes, SpanKind.INTERNAL)
        self._open[run_id] = _Open(span, time.perf_counter(), "node", node, task=task)
        self._record(span, node, "input", inputs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._parents.pop(run_id, None)
        opened = self._open.pop(run_id, None)
        if opened is None:
            return
        self._record(opened.span, opened.name, "output", outputs)
        self._end_node(opened, "ok")

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._parents.pop(run_id, None)
        opened = self._open.pop(run_id, None)
        if opened is None:
            return
        if _is_control_flow(error):  # interrupt(), Command(goto=...) and friends end a node on purpose
            self._end_node(opened, "ok")
            return
        _fail(opened.span, error)
        self._end_node(opened, "error")

    def _end_node(self, opened: _Open, outcome: str) -> None:
        if opened.task is not None:
            self._tasks.pop(opened.task, None)
        seconds = time.perf_counter() - opened.started
        labels = (self.graph_id, metrics.bounded("node", opened.name), outcome)
        metrics.NODE_DURATION.labels(*labels).observe(seconds)
        opened.span.end()

    # ------------------------------------------------------------ model calls

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, metadata, kwargs.get("invocation_params"), name)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, metadata, kwargs.get("invocation_params"), name)

    def _model_start(
        self,
        serialized: dict[str, Any] | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        params: dict[str, Any] | None,
        name: str | None,
    ) -> None:
        meta = metadata or {}
        provider, model = model_identity(serialized, meta, params, name)
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": model,
            "graphrun.graph_id": self.graph_id,
        }
        for key, attr in (
            ("ls_temperature", "gen_ai.request.temperature"),
            ("ls_max_tokens", "gen_ai.request.max_tokens"),
        ):
            if isinstance(meta.get(key), (int, float)):
                attributes[attr] = meta[key]
        span = self._start(f"chat {model}", parent_run_id, attributes, SpanKind.CLIENT)
        labels = (metrics.bounded("provider", provider), metrics.bounded("model", model))
        self._open[run_id] = _Open(span, time.perf_counter(), "model", model, labels)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._open.pop(run_id, None)
        if opened is None:
            return
        provider, model = opened.labels
        usage = _usage(response)
        span = opened.span
        tally = self.usage.setdefault(f"{provider}/{model}", {"input": 0, "output": 0})
        tally["input"] += int(usage.get("input_tokens") or 0)
        tally["output"] += int(usage.get("output_tokens") or 0)
        if usage.get("input_tokens") is not None:
            span.set_attribute("gen_ai.usage.input_tokens", usage["input_tokens"])
            metrics.MODEL_TOKENS.labels(provider, model, "input").inc(usage["input_tokens"])
        if usage.get("output_tokens") is not None:
            span.set_attribute("gen_ai.usage.output_tokens", usage["output_tokens"])
            metrics.MODEL_TOKENS.labels(provider, model, "output").inc(usage["output_tokens"])
        if usage.get("finish_reasons"):
            span.set_attribute("gen_ai.response.finish_reasons", usage["finish_reasons"])
        if usage.get("response_model"):
            span.set_attribute("gen_ai.response.model", usage["response_model"])
        self._end_model(opened, "ok")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._open.pop(run_id, None)
        if opened is None:
            return
        _fail(opened.span, error)
        opened.span.set_attribute("error.type", type(error).__name__)
        self._end_model(opened, "error")

    def _end_model(self, opened: _Open, outcome: str) -> None:
        provider, model = opened.labels
        metrics.MODEL_CALLS.labels(provider, model, outcome).inc()
        metrics.MODEL_LATENCY.labels(provider, model).observe(time.perf_counter() - opened.started)
        opened.span.end()

    # ------------------------------------------------------------ tools

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        tool = name or serialized_name(serialized) or "tool"
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
        span = self._start(f"execute_tool {tool}", parent_run_id, attributes, SpanKind.INTERNAL)
        self._open[run_id] = _Open(span, time.perf_counter(), "tool", tool)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._open.pop(run_id, None)
        if opened is not None:
            opened.span.end()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        opened = self._open.pop(run_id, None)
        if opened is not None:
            if not _is_control_flow(error):
                _fail(opened.span, error)
            opened.span.end()

    # ------------------------------------------------------------ helpers

    def _start(
        self, name: str, parent_run_id: UUID | None, attributes: dict[str, Any], kind: SpanKind
    ) -> Span:
        """A span under the nearest open span of an enclosing runnable, else under the run's span."""
        parent = None
        ancestor = parent_run_id
        for _ in range(64):  # runnables between a node and what it calls have no span of their own
            if ancestor is None:
                break
            parent = self._open.get(ancestor)
            if parent is not None:
                break
            ancestor = self._parents.get(ancestor)
        ctx = trace.set_span_in_context(parent.span if parent is not None else self._root)
        return tracer.start_span(name, context=ctx, kind=kind, attributes=attributes)

    def _record(self, span: Span, node: str, which: str, value: Any) -> None:
        if self.node_io == "off":
            return
        recorded = _summary(value) if self.node_io == "summary" else _full(value, self.max_chars)
        span.add_event(f"node.{which}", {"value": recorded})
        log.info(f"node_{which}", node=node, **{which: recorded})


def langfuse_handler() -> Any:
    """Langfuse's official LangChain handler (it reads ``LANGFUSE_PUBLIC_KEY``, ``LANGFUSE_SECRET_KEY`` and
    ``LANGFUSE_HOST`` itself); one per run, so each run is one trace."""
    global _langfuse
    try:
        from langfuse import Langfuse
        from langfuse.langchain import CallbackHandler
    except ImportError as exc:
        raise errors.ConfigError(
            "LANGFUSE_PUBLIC_KEY is set but the langfuse package is not installed: "
            "pip install 'graphrun[langfuse]'"
        ) from exc
    if _langfuse is None:
        # Langfuse sends through OpenTelemetry: on a tracer provider of its own, so that its spans (which
        # carry raw inputs) never reach graphrun's OTLP exporter, nor graphrun's spans Langfuse.
        from opentelemetry.sdk.trace import TracerProvider

        _langfuse = Langfuse(tracer_provider=TracerProvider())
    return CallbackHandler()


_langfuse: Any = None


def flush_langfuse() -> None:
    """Send what Langfuse still holds (a worker calls this before it exits)."""
    if _langfuse is not None:
        _langfuse.flush()


def _is_control_flow(error: BaseException) -> bool:
    from langgraph.errors import GraphBubbleUp

    return isinstance(error, GraphBubbleUp)


def _fail(span: Span, error: BaseException) -> None:
    message = redact.text(f"{type(error).__name__}: {error}")
    span.set_status(Status(StatusCode.ERROR, message))
    span.add_event("exception", {"exception.type": type(error).__name__, "exception.message": message})


def _usage(response: LLMResult) -> dict[str, Any]:
    """Token counts and finish reasons of a model call, from the message's ``usage_metadata`` (every
    LangChain chat model) or the provider's ``llm_output`` (older LLMs)."""
    usage: dict[str, Any] = {}
    reasons: list[str] = []
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            meta = getattr(message, "usage_metadata", None) or {}
            for key in ("input_tokens", "output_tokens"):
                if isinstance(meta.get(key), int):
                    usage[key] = usage.get(key, 0) + meta[key]
            info = {
                **(generation.generation_info or {}),
                **(getattr(message, "response_metadata", None) or {}),
            }
            reason = info.get("finish_reason") or info.get("stop_reason")
            if isinstance(reason, str):
                reasons.append(reason)
            if isinstance(info.get("model_name"), str):
                usage["response_model"] = info["model_name"]
    if "input_tokens" not in usage and isinstance(response.llm_output, dict):
        token_usage = response.llm_output.get("token_usage") or response.llm_output.get("usage") or {}
        if isinstance(token_usage.get("prompt_tokens"), int):
            usage["input_tokens"] = token_usage["prompt_tokens"]
        if isinstance(token_usage.get("completion_tokens"), int):
            usage["output_tokens"] = token_usage["completion_tokens"]
    if reasons:
        usage["finish_reasons"] = reasons
    return usage


def _summary(value: Any) -> Any:
    """Keys and sizes, no content: what an operator may always see."""
    if isinstance(value, dict):
        return {str(k): _size(v) for k, v in value.items()}
    return _size(value)


def _size(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[{len(value)}]"
    if isinstance(value, str):
        return f"str[{len(value)}]"
    if isinstance(value, dict):
        return f"dict[{len(value)}]"
    return type(value).__name__


def _full(value: Any, max_chars: int) -> str:
    """The value as JSON, redacted, cut to ``max_chars``."""
    text = encoding.dumps(redact.value(encoding.jsonable(value))).decode("utf-8", errors="replace")
    text = redact.text(text)
    return text if len(text) <= max_chars else text[:max_chars] + f"…(+{len(text) - max_chars} chars)"
