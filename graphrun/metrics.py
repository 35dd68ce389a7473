"""Prometheus metrics of a graphrun process (prometheus-client), in one registry.

The API serves them at ``/metrics``; ``graphrun worker`` on ``GRAPHRUN_METRICS_PORT``, with ``/ok`` there
too (``serve``). Names, labels and
what each counts are in docs/observability.md. Labels take only bounded values (graph ids and node
names come from the configuration, model and provider names from the models a graph calls): no ids, and
a label past ``_MAX_VALUES`` distinct values is reported as ``other``.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LONG = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

HTTP_REQUESTS = Counter(
    "graphrun_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "graphrun_http_request_duration_seconds",
    "time until the response started (a stream's first bytes), by method and route template",
    ["method", "route"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
RUNS = Counter(
    "graphrun_runs_total",
    "runs a worker finished, by graph and final status",
    ["graph_id", "status"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "graphrun_run_duration_seconds",
    "execution time of a run's attempt, by graph and final status",
    ["graph_id", "status"],
    buckets=_LONG,
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "graphrun_queue_wait_seconds",
    "time from a run's creation to its first claim by a worker, by graph",
    ["graph_id"],
    buckets=_LONG,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "graphrun_queue_depth", "runs pending (waiting for a worker), as a worker last counted", registry=REGISTRY
)
RUNS_IN_FLIGHT = Gauge(
    "graphrun_runs_in_flight", "runs this process executes now, by graph", ["graph_id"], registry=REGISTRY
)
NODE_DURATION = Histogram(
    "graphrun_node_duration_seconds",
    "execution time of a graph node, by graph, node and outcome",
    ["graph_id", "node", "outcome"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
MODEL_CALLS = Counter(
    "graphrun_model_calls_total",
    "chat model and LLM calls, by provider, model and outcome (ok or error)",
    ["provider", "model", "outcome"],
    registry=REGISTRY,
)
MODEL_LATENCY = Histogram(
    "graphrun_model_call_duration_seconds",
    "duration of a model call, by provider and model",
    ["provider", "model"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "graphrun_model_tokens_total",
    "tokens of model calls, by provider, model and direction (input or output)",
    ["provider", "model", "direction"],
    registry=REGISTRY,
)
STREAM_SUBSCRIBERS = Gauge(
    "graphrun_stream_subscribers",
    "open event streams, by kind (run, thread, protocol)",
    ["kind"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "graphrun_circuit_breaker_state",
    "state of graphrun.resilience circuit breakers: 0 closed, 1 half-open, 2 open",
    ["provider", "model"],
    registry=REGISTRY,
)
WORKER_HEARTBEAT = Gauge(
    "graphrun_worker_heartbeat_timestamp_seconds",
    "when this process's worker last ran its heartbeat (Unix time): stale or absent, no worker works",
    registry=REGISTRY,
)
RETRIES = Counter(
    "graphrun_retries_total",
    "retryable failures graphrun.resilience retried, by failure kind and by what retried "
    "(decorator: retrying; policy: a node's retry_policy, whose last failed attempt counts too)",
    ["kind", "via"],
    registry=REGISTRY,
)
RUN_FAILURES = Counter(
    "graphrun_run_failures_total",
    "runs that failed, by failure kind (graphrun.resilience.classify) and whether an error boundary "
    "answered in the thread instead",
    ["graph_id", "kind", "handled"],
    registry=REGISTRY,
)
BUS_ERRORS = Counter(
    "graphrun_event_bus_errors_total",
    "event-bus (Redis) operations that failed, by operation",
    ["op"],
    registry=REGISTRY,
)

_MAX_VALUES = 200
_seen: dict[str, set[str]] = {}
_seen_lock = threading.Lock()


def bounded(label: str, value: object) -> str:
    """``value`` as a label value; once ``label`` has had ``_MAX_VALUES`` distinct values, new ones are
    ``other``."""
    text = str(value) if value not in (None, "") else "unknown"
    with _seen_lock:
        seen = _seen.setdefault(label, set())
        if text in seen:
            return text
        if len(seen) >= _MAX_VALUES:
            return "other"
        seen.add(text)
        return text


class _Pools(Collector):
    """psycopg_pool statistics of the pools this process opened (``watch_pool``)."""

    def __init__(self) -> None:
        self._pools: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def watch(self, name: str, pool: Any) -> None:
        self._pools[name] = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "graphrun_db_pool_connections",
            "PostgreSQL pool connections by pool and state (size, available, max, waiting requests)",
            labels=["pool", "state"],
        )
        for name, pool in list(self._pools.items()):
            try:
                stats = pool.get_stats()
            except Exception:  # a pool closing as it is read: skip it this time
                continue
            family.add_metric([name, "size"], stats.get("pool_size", 0))
            family.add_metric([name, "available"], stats.get("pool_available", 0))
            family.add_metric([name, "waiting"], stats.get("requests_waiting", 0))
            family.add_metric([name, "max"], getattr(pool, "max_size", 0))
        yield family


_POOLS = _Pools()
REGISTRY.register(_POOLS)


def watch_pool(name: str, pool: Any) -> None:
    """Report a psycopg_pool pool's usage as ``graphrun_db_pool_connections{pool=name}``."""
    _POOLS.watch(name, pool)


def render() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes and probes are not events
        pass


def serve(port: int, host: str, alive: Callable[[], str | None]) -> WSGIServer:
    """``/metrics`` and ``/ok`` on a port of their own, for a worker (it has no HTTP API), on a thread.

    ``alive`` answers ``None`` while the worker works, else why not: ``/ok`` then answers 503 with the
    reason, so a liveness probe restarts a worker whose event loop hangs. The thread is not the event
    loop, so it answers (and reports the stale heartbeat gauge) even then."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/ok":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        problem = alive()
        status = "200 OK" if problem is None else "503 Service Unavailable"
        body = json.dumps({"ok": True} if problem is None else {"ok": False, "error": problem}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server(host, port, app, _Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="graphrun-metrics", daemon=True).start()
    return server
