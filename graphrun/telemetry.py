"""Logs and traces of a graphrun process.

Logging: one JSON event per line on stdout (structlog), stdlib loggers (uvicorn) included. Every line
carries the ids bound where it was written (``request_id`` in the API, ``run_id``, ``thread_id``,
``assistant_id``, ``graph_id``, ``attempt`` in the worker) and the current span's ``trace_id`` and
``span_id``; everything in it passes through the process's redactor (``graphrun.redact``) last, the
rendered exception included.

Tracing: OpenTelemetry's SDK. A tracer provider is always installed, so that every request and run has
a trace id for the logs and the ``X-Trace-Id`` header; spans are exported only when an exporter is
configured by the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` for OTLP/HTTP, ``OTEL_TRACES_EXPORTER=console``). The API's trace
context travels with the run (``inject`` when the run is written, ``extract`` in the worker), so one
trace spans the request, the queue and the run in whichever process executes it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

import graphrun
from graphrun import redact

tracer = trace.get_tracer("graphrun", graphrun.__version__)


def _trace_ids(logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    return event


# Fields graphrun fills with values that cannot carry a secret (constants, timestamps, server-made ids):
# not worth a regex pass on every line.
_SAFE_FIELDS = frozenset(
    {
        "event",
        "level",
        "logger",
        "timestamp",
        "trace_id",
        "span_id",
        "run_id",
        "thread_id",
        "assistant_id",
        "graph_id",
        "attempt",
    }
)


def _redacted(logger: Any, name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    rest = {k: v for k, v in event.items() if k not in _SAFE_FIELDS}
    cleaned: dict[str, Any] = redact.value(rest)
    return {**{k: v for k, v in event.items() if k in _SAFE_FIELDS}, **cleaned}


def _redacted_foreign(logger: Any, name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """A library's log record (httpx, LangChain…): its message is its own text, URLs with tokens
    included, so it is masked too."""
    cleaned = _redacted(logger, name, event)
    return {**cleaned, "event": redact.value(cleaned.get("event"))}


def _json(event: Any, **_: Any) -> str:
    # orjson: several times faster than the stdlib's json on every line
    return orjson.dumps(event, default=repr).decode()


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _trace_ids,
]


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the standard library through one renderer. Idempotent."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            # Drop events below the level first: the rest of the chain (timestamps, context) costs CPU.
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.format_exc_info,
            _redacted,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.processors.format_exc_info, _redacted_foreign],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# ---------------------------------------------------------------- tracing


def configure_tracing(
    *, exporter: str, endpoint: str, traces_endpoint: str, service_name: str, role: str
) -> TracerProvider:
    """Install the process's tracer provider (once per process) with the exporter the settings name;
    returns it, to be shut down (flushed) when the process ends."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "graphrun.role": role}))
    processor = _exporter(exporter, endpoint, traces_endpoint)
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def _exporter(exporter: str, endpoint: str, traces_endpoint: str) -> SpanProcessor | None:
    name = exporter.strip().lower()
    if name == "none" or (name in ("", "otlp") and not (endpoint or traces_endpoint)):
        return None
    if name == "console":
        return BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
    # OTLP over HTTP/protobuf, the SDK's default protocol; the exporter reads the other OTEL_EXPORTER_OTLP_*
    # variables (headers, timeout, compression) itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url = traces_endpoint or endpoint.rstrip("/") + "/v1/traces"
    return BatchSpanProcessor(OTLPSpanExporter(endpoint=url))


def inject() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``), to store with a run."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(carrier or {}))


def current_trace_id() -> str | None:
    span = trace.get_current_span().get_span_context()
    return format(span.trace_id, "032x") if span.is_valid else None
