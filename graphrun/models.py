"""The records of the control store and the pure decisions about them.

Stores return these; the API turns them into the official server's JSON. No I/O here.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphrun import errors, redact
from graphrun.types import (
    INFLIGHT_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    Json,
    MultitaskStrategy,
    RunStatus,
    ThreadStatus,
)

# The namespace the official server uses for system assistant ids: uuid5(NAMESPACE, graph_id).
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def system_assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id))


_id_lock = threading.Lock()
_id_last = [0, 0]  # the last (milliseconds, 12-bit counter) handed out


def new_id() -> str:
    """A time-ordered UUID (v7), as the official server generates: ids made later sort later.

    Written here because Python 3.11 has no ``uuid.uuid7``. Within one millisecond the 12-bit
    ``rand_a`` field is a counter (RFC 9562, method 1); when it overflows, the timestamp moves on.
    """
    with _id_lock:
        ms = max(time.time_ns() // 1_000_000, _id_last[0])
        counter = _id_last[1] + 1 if ms == _id_last[0] else 0
        if counter > 0xFFF:
            ms, counter = ms + 1, 0
        _id_last[:] = [ms, counter]
    rand_b = uuid.uuid4().int & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Assistant:
    assistant_id: str
    graph_id: str
    config: Json
    context: Json
    metadata: Json
    name: str
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Thread:
    thread_id: str
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    metadata: Json
    status: ThreadStatus
    values: Json | None
    interrupts: dict[str, list[Json]]
    config: Json
    error: Json | None
    ttl_minutes: float | None = None  # deleted when not updated for this long (None: the default TTL)
    ttl_strategy: str | None = None  # what the TTL does: delete (None too) or keep_latest
    # Priority settings (priority.path), assigned at the thread's first run; None: not assigned yet.
    priority: int | None = None
    fairness_group: str | None = None


@dataclass(frozen=True)
class RunRequest:
    """Everything the runner needs to execute a run, stored on the run row when it is created."""

    input: Any = None
    command: Json | None = None
    config: Json = field(default_factory=dict)
    context: Json = field(default_factory=dict)
    stream_mode: list[str] = field(default_factory=lambda: ["values"])
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: list[str] | str | None = None
    interrupt_after: list[str] | str | None = None
    checkpoint: Json | None = None
    durability: str | None = None
    on_completion: str | None = None
    temporary: bool = False
    webhook: str | None = None
    strict_resume: bool = False
    # "v2": started through the thread-stream protocol (``POST /threads/{id}/commands``); the runner
    # streams LangGraph's v3 protocol events instead of the stream modes.
    protocol: str | None = None
    # The W3C trace context of the request that wrote the run (``traceparent``): the worker's run span
    # continues that trace.
    trace_context: dict[str, str] = field(default_factory=dict)
    # The API published the run's opening ``metadata`` event when it wrote the run (a run streamed by the
    # request that creates it). False: the worker publishes it when it starts the run, so that a
    # ``runs.wait``, which no one streams as it is created, costs the API no write to the bus.
    announced: bool = True

    @property
    def deletes_thread(self) -> bool:
        """A stateless run's temporary thread goes when the run ends, unless it asked to keep it."""
        return self.temporary and self.on_completion != "keep"

    @property
    def timeouts(self) -> Timeouts:
        return run_timeouts(self.config, self.context)


@dataclass(frozen=True)
class Cron:
    """A schedule of runs: on each tick a worker writes one run of ``template`` (on ``thread_id``, or on
    a new thread each time when it is None)."""

    cron_id: str
    assistant_id: str
    thread_id: str | None
    user_id: str | None
    schedule: str
    timezone: str | None
    end_time: datetime | None  # no tick fires after it
    enabled: bool
    on_run_completed: str | None  # a stateless cron's new threads: delete (default) or keep
    next_run_date: datetime | None
    payload: Json  # the request as the client gave it (the official ``payload``)
    metadata: Json
    # What each run is made of: graph_id, metadata, multitask_strategy, thread_stamp, and ``request``
    # (a ``RunRequest``) whose config and context go on top of the assistant's at each tick.
    template: Json
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Timeouts:
    """A run's own time limits, in seconds: the whole run's (None: ``GRAPHRUN_RUN_TIMEOUT_S``) and each
    node's (``"*"``: every node not named)."""

    run_s: float | None = None
    nodes: dict[str, float] = field(default_factory=dict)

    def node_limit(self, node: str) -> float | None:
        return self.nodes.get(node, self.nodes.get("*"))


def run_timeouts(config: Json, context: Json) -> Timeouts:
    """The limits a run asks for: ``run_timeout_s`` (a number) and ``node_timeout_s`` (a number for every
    node, or an object of node name to number, ``"*"`` for the rest), read from the run's context or its
    config's ``configurable`` (the assistant's merged with the request's). ``InvalidRequest`` names a bad
    value."""
    given = {**((config or {}).get("configurable") or {}), **(context or {})}
    run_s = given.get("run_timeout_s")
    if run_s is not None:
        run_s = _seconds("run_timeout_s", run_s)
    nodes_given = given.get("node_timeout_s")
    nodes: dict[str, float] = {}
    if isinstance(nodes_given, dict):
        for node, value in nodes_given.items():
            nodes[str(node)] = _seconds(f"node_timeout_s.{node}", value)
    elif nodes_given is not None:
        nodes["*"] = _seconds("node_timeout_s", nodes_given)
    return Timeouts(run_s, nodes)


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 31_536_000:
        raise errors.InvalidRequest(
            f"{name} must be a number of seconds above 0 (at most a year), not {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class Run:
    run_id: str
    thread_id: str
    assistant_id: str
    graph_id: str
    status: RunStatus
    metadata: Json
    multitask_strategy: MultitaskStrategy
    request: RunRequest
    created_at: datetime
    updated_at: datetime
    attempt: int = 0
    available_at: datetime | None = None
    output: Json | None = None
    error: Json | None = None
    cancel_action: str | None = None
    # Why it was cancelled (None: it was not): cancelled, client_disconnect, superseded_by_interrupt,
    # superseded_by_rollback, assistant_deleted.
    cancel_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def inflight(self) -> bool:
        return self.status in INFLIGHT_RUN_STATUSES


@dataclass(frozen=True)
class RunOutcome:
    """How an attempt ended, as the runner reports it to the store."""

    status: RunStatus
    output: Json | None
    thread_status: ThreadStatus
    thread_values: Json | None
    interrupts: dict[str, list[Json]]
    error: Json | None = None
    # Tokens the run's model calls used: {"<provider>/<model>": {"input": n, "output": n}} (analytics).
    usage: Json | None = None

    @classmethod
    def cancelled(cls) -> RunOutcome:
        """Cancelled before the graph could report its state: the thread keeps the values it had."""
        return cls("interrupted", {}, "idle", None, {})

    @classmethod
    def crashed(cls, exc: BaseException) -> RunOutcome:
        error = {"error": type(exc).__name__, "message": redact.text(str(exc))}
        return cls("error", {"__error__": error}, "error", None, {}, error)


def merge_config(base: Json, override: Json) -> Json:
    """A run's config: the assistant's, with the request's keys on top (``configurable`` and
    ``metadata`` merged one level down)."""
    merged = {**base, **override}
    for key in ("configurable", "metadata"):
        if key in base or key in override:
            merged[key] = {**base.get(key, {}), **override.get(key, {})}
    return merged


def thread_status_after(run_status: RunStatus, has_pending_tasks: bool) -> ThreadStatus:
    """The thread's status once a run on it has ended, by the official server's rule: ``interrupted``
    while its head checkpoint has tasks still to run (an ``interrupt()``, a breakpoint, or a run
    cancelled mid-way), ``error`` after a failure, else ``idle``."""
    if run_status in ("error", "timeout"):
        return "error"
    if has_pending_tasks:
        return "interrupted"
    return "idle"


def run_output(values: Json | None, interrupts: list[Json], error: Json | None) -> Json:
    """What ``/wait`` and ``/join`` answer: the values, ``__interrupt__`` merged in, or ``__error__``."""
    if error is not None:
        return {"__error__": error}
    out: Json = dict(values or {})
    if interrupts:
        out["__interrupt__"] = interrupts
    return out


def run_json(r: Run) -> Json:
    """A run as the API answers it (and a webhook posts it)."""
    return {
        "run_id": r.run_id,
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
        "status": r.status,
        "metadata": r.metadata,
        "kwargs": {
            "input": r.request.input,
            "command": r.request.command,
            "config": r.request.config,
            "context": r.request.context,
            "stream_mode": r.request.stream_mode,
        },
        "multitask_strategy": r.multitask_strategy,
        "cancel_reason": r.cancel_reason,
    }


@dataclass(frozen=True)
class RunStats:
    """What the runs created in a time window add up to (``ControlStore.run_stats``): the same numbers
    from either store. Latencies are seconds from a run's creation to its end (queue wait included),
    percentiles by nearest rank; rates are shares of the finished runs (None when none finished)."""

    runs: int
    threads: int
    by_status: dict[str, int]
    turns_avg: float | None
    turns_p95: int | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_p99_s: float | None
    error_rate: float | None
    timeout_rate: float | None
    tokens: dict[str, dict[str, int]]

    def json(self) -> Json:
        return {
            "runs": self.runs,
            "threads_active": self.threads,
            "runs_by_status": self.by_status,
            "turns_per_thread": {"avg": self.turns_avg, "p95": self.turns_p95},
            "latency_s": {"p50": self.latency_p50_s, "p95": self.latency_p95_s, "p99": self.latency_p99_s},
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "tokens_by_model": self.tokens,
        }
