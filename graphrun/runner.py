"""Executes one claimed run: ``graph.astream`` with the server's checkpointer, events to the bus.

The runner owns everything between "this worker holds the run" and "the outcome is known". It never
writes the run's final row itself: it returns a ``RunOutcome`` and the worker records it under its lease.

Why over ~400 lines (issue 24): one run's execution, from the claimed run to its outcome, with the helpers
only it uses below (``_Watch`` for the run's and its nodes' time limits, and the stream-part readers).
Those could move out; it was not done in issue 24 because issue 30 was changing this module (the lease
fence) at the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import structlog
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.constants import END, START
from langgraph.errors import EmptyInputError, GraphDrained, InvalidUpdateError
from langgraph.pregel import Pregel
from langgraph.runtime import RunControl
from langgraph.types import Command
from opentelemetry import trace

from graphrun import encoding, errors, metrics, protocol, redact, resilience
from graphrun.checkpointer import delete_runs, delete_thread, keep_latest
from graphrun.graphs import GraphRegistry, thread_interrupts
from graphrun.instrument import RunInstrument, langfuse_handler
from graphrun.models import Run, RunOutcome, Timeouts, run_output, thread_status_after
from graphrun.savers import UNAVAILABLE
from graphrun.settings import Settings
from graphrun.stores.base import ControlStore
from graphrun.streams import EventBus
from graphrun.types import Json, RunStatus
from graphrun.wire import WireEvents, langgraph_modes

log = structlog.get_logger("graphrun.runner")

# LangGraph's configurable key for refusing a resume that answers no pending interrupt (the SDK's
# `strict_resume`); LangGraph exports it only from a private module, so it is spelled out here.
_STRICT_RESUME = "__pregel_strict_resume"


@dataclass
class RunHandle:
    """What the worker can do to a run while it executes: cancel it (with a reason) or drain it."""

    run: Run
    control: RunControl = field(default_factory=RunControl)
    cancel_action: str | None = None
    finishing: bool = False  # the outcome is known and being recorded: too late to cancel


class Runner:
    def __init__(self, settings: Settings, store: ControlStore, bus: EventBus, graphs: GraphRegistry) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._graphs = graphs

    async def execute(self, handle: RunHandle) -> RunOutcome:
        """Run the graph to its end, an interrupt, an error, a timeout or a cancel; say which."""
        run = handle.run
        config = self._config(run)
        try:
            graph_cm = self._graphs.graph(
                run.graph_id, config, access="threads.create_run", context=run.request.context
            )
            async with graph_cm as graph:
                return await self._run_graph(graph, run, config, handle)
        except asyncio.CancelledError:
            if handle.cancel_action is None:
                raise  # not a user's cancel: the worker is shutting down, or lost the lease
            # Cancelled while the graph was being built or its final state read: nothing more to report.
            return RunOutcome.cancelled()

    async def _run_graph(
        self, graph: Pregel[Any, Any], run: Run, config: RunnableConfig, handle: RunHandle
    ) -> RunOutcome:
        settings = self._settings
        instrument = RunInstrument(run.graph_id, settings.node_io, settings.node_io_max_chars)
        outcome = await self._attempt(graph, run, config, handle, instrument)
        return dataclasses.replace(outcome, usage=instrument.usage or None)

    async def _attempt(
        self,
        graph: Pregel[Any, Any],
        run: Run,
        config: RunnableConfig,
        handle: RunHandle,
        instrument: RunInstrument,
    ) -> RunOutcome:
        settings = self._settings
        limits = run.request.timeouts
        wire = WireEvents(run.request.stream_mode)
        # The run's own limit and each node's are enforced by timers that first say why (naming the
        # nodes running then: they are gone once the cancel unwinds them), then expire the deadline.
        deadline = asyncio.timeout(None)
        why: list[str] = []
        watch = _Watch(instrument, limits, limits.run_s or settings.run_timeout_s, deadline, why)
        try:
            async with deadline, watch:
                seen = await self._stream(graph, run, config, handle, instrument, wire)
        except asyncio.CancelledError:
            if handle.cancel_action is None:
                raise
            return await self._outcome(graph, config, "interrupted", None)
        except (GraphDrained, errors.LeaseLost):
            raise  # asked to stop at a step boundary (re-queued), or a checkpoint write refused (not ours)
        except UNAVAILABLE as exc:
            # The checkpointer's (or a node's) database does not answer: not the graph's fault. The worker
            # hands the run back; it continues from its last checkpoint once the database is back.
            raise errors.StoreUnavailable(f"run {run.run_id} stopped: {type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            if not deadline.expired():  # a node's own timeout: an error like any other
                return await self._error(graph, run, config, exc, wire)
            metrics.RUN_FAILURES.labels(run.graph_id, "timeout", "false").inc()
            log.warning("run_timed_out", run_id=run.run_id, message=why[0])
            error_type = "timeout" if settings.error_detail == "safe" else "TimeoutError"
            return await self._failed(graph, run, config, "timeout", error_type, why[0])
        except Exception as exc:
            if _input_misfit(exc, run, instrument.started):
                return await self._refuse_input(graph, run, config, exc)
            return await self._error(graph, run, config, exc, wire)
        if _ended_plainly(graph, run, seen):
            values = encoding.jsonable(seen.values)
            return RunOutcome("success", run_output(values, [], None), "idle", values, {})
        return await self._outcome(graph, config, "success", None)

    async def _error(
        self, graph: Pregel[Any, Any], run: Run, config: RunnableConfig, exc: Exception, wire: WireEvents
    ) -> RunOutcome:
        """A graph's error: answered in the thread by its error boundary if it has one, else the run's
        error. Either way the cause, masked, goes to the log and the run's trace."""
        failure = resilience.classify(exc)
        cause = redact.text(str(exc))
        span = trace.get_current_span()
        span.add_event("exception", {"exception.type": type(exc).__name__, "exception.message": cause})
        boundary = resilience.boundary_of(graph)
        if boundary is not None:
            handled = await self._answer_in_thread(graph, run, config, boundary, wire)
            if handled is not None:
                metrics.RUN_FAILURES.labels(run.graph_id, failure.kind, "true").inc()
                log.warning(
                    "run_error_handled",
                    run_id=run.run_id,
                    error=type(exc).__name__,
                    kind=failure.kind,
                    message=cause,
                )
                return handled
        metrics.RUN_FAILURES.labels(run.graph_id, failure.kind, "false").inc()
        name = type(exc).__name__
        log.warning("run_failed", run_id=run.run_id, error=name, kind=failure.kind, message=cause)
        if self._settings.error_detail == "safe":
            code, text = resilience.public_error(exc)
            return await self._failed(graph, run, config, "error", code, f"{text} (run {run.run_id})")
        # As the official server: the exception's type and message (with secrets and personal data masked).
        return await self._failed(graph, run, config, "error", name, cause)

    async def _refuse_input(
        self, graph: Pregel[Any, Any], run: Run, config: RunnableConfig, exc: Exception
    ) -> RunOutcome:
        """The client's input does not fit the graph: the run ends ``error`` saying so, never answered by
        an error boundary as if a service had failed, and logged as a warning without a traceback. What
        LangGraph wrote of it is deleted: a bad input left in a checkpoint makes the thread's
        state unreadable until the next input."""
        await delete_runs(self._graphs.persistence.checkpointer, run.thread_id, [run.run_id])
        metrics.RUN_FAILURES.labels(run.graph_id, "validation", "false").inc()
        cause = redact.text(str(exc))
        log.warning("run_input_refused", run_id=run.run_id, error=type(exc).__name__, message=cause)
        what = f"The run's input does not fit the input of graph {run.graph_id!r}"
        if self._settings.error_detail == "safe":
            return await self._failed(
                graph, run, config, "error", "invalid_input", f"{what} (run {run.run_id})"
            )
        return await self._failed(graph, run, config, "error", type(exc).__name__, f"{what}: {cause}")

    async def _answer_in_thread(
        self,
        graph: Pregel[Any, Any],
        run: Run,
        config: RunnableConfig,
        boundary: resilience.ErrorBoundary,
        wire: WireEvents,
    ) -> RunOutcome | None:
        """The error boundary: the failed node's pending step is cleared and the boundary's message
        written as that node's answer; whatever that would run next is cleared too, so the thread is idle.
        None when there is no failed node to answer for (an error outside the nodes)."""
        head = _with_checkpoint(config, None)
        try:
            state = await graph.aget_state(head)
            failed = next((t.name for t in state.tasks if t.error is not None), None)
            if failed is None:
                return None
            message = AIMessage(
                content=boundary.message,
                id=str(uuid.uuid4()),
                response_metadata={"graphrun_error_boundary": True},
            )
            update = {boundary.messages_key: [message]}
            await graph.aupdate_state(head, None, as_node=END)
            await graph.aupdate_state(head, update, as_node=failed)
            if (await graph.aget_state(head)).next:
                await graph.aupdate_state(head, None, as_node=END)
            outcome = await self._outcome(graph, config, "success", None)
        except Exception:
            log.exception("error_boundary_failed", run_id=run.run_id)
            return None
        if run.request.protocol != "v2":  # a protocol client reads the thread's state instead
            metadata = {"langgraph_node": failed, "graphrun_error_boundary": True}
            parts: list[tuple[str, Any]] = [
                ("updates", {failed: update}),
                ("messages", (message, metadata)),
                ("values", outcome.thread_values),
            ]
            for mode, chunk in parts:
                for name, data in wire.part((), mode, chunk):
                    await self._bus.publish(run.run_id, name, data, thread_id=run.thread_id)
        return outcome

    @staticmethod
    def _config(run: Run) -> RunnableConfig:
        """The run's config (the assistant's, merged in when the run was created) plus the ids LangGraph
        and the checkpoint metadata carry."""
        request = run.request
        ids = {
            "thread_id": run.thread_id,
            "run_id": run.run_id,
            "assistant_id": run.assistant_id,
            "graph_id": run.graph_id,
        }
        configurable = {**request.config.get("configurable", {}), **ids}
        if request.strict_resume:
            configurable[_STRICT_RESUME] = True
        metadata = {**request.config.get("metadata", {}), **run.metadata, **ids, "run_attempt": run.attempt}
        # Langfuse's handler reads these: one session per thread, the run's user where it names one.
        metadata.setdefault("langfuse_session_id", run.thread_id)
        owner = run.metadata.get("owner") or run.metadata.get("user_id")
        if isinstance(owner, str):
            metadata.setdefault("langfuse_user_id", owner)
        config: dict[str, Any] = {**request.config, "configurable": configurable, "metadata": metadata}
        return config  # type: ignore[return-value]

    async def _stream(
        self,
        graph: Pregel[Any, Any],
        run: Run,
        config: RunnableConfig,
        handle: RunHandle,
        instrument: RunInstrument,
        wire: WireEvents,
    ) -> _Seen:
        """Stream the graph, publishing the modes the client asked for. ``values`` is always streamed
        too, so that the final state of a plain run is known without reading it back."""
        request = run.request
        if run.attempt > 1 or not request.announced:  # else the API announced it when it wrote the run
            metadata = {"run_id": run.run_id, "attempt": run.attempt}
            await self._bus.publish(run.run_id, "metadata", metadata, thread_id=run.thread_id)
        resuming = run.attempt > 1 and await self._has_progress(graph, run)
        run_config = _with_checkpoint(config, None if resuming else request.checkpoint)
        run_config["callbacks"] = self._callbacks(instrument)
        graph_input: Any = None if resuming else _input(request.input, request.command)
        # Modes and durability were validated by the API against LangGraph's literals; the row holds str.
        options: dict[str, Any] = {
            "stream_mode": sorted(langgraph_modes(request.stream_mode)),
            "interrupt_before": request.interrupt_before,
            "interrupt_after": request.interrupt_after,
            "durability": request.durability or self._settings.default_durability,
            "context": _graph_context(graph, request.context),
            "control": handle.control,
            "subgraphs": request.stream_subgraphs,
        }
        seen = _Seen()
        if request.protocol == "v2":
            parts = _protocol_parts
        else:
            parts = _events_parts if wire.wants_events else _astream_parts
        async with contextlib.aclosing(parts(graph, graph_input, run, run_config, options)) as stream:
            async for namespace, mode, chunk in stream:
                if mode == "protocol":
                    await self._publish_protocol(run, seen, chunk)
                    continue
                if mode == "values" and not namespace:
                    seen.observe(chunk)
                for name, data in wire.part(namespace, mode, chunk):
                    await self._bus.publish(run.run_id, name, data, thread_id=run.thread_id)
        return seen

    async def _publish_protocol(self, run: Run, seen: _Seen, event: Json) -> None:
        """One of LangGraph's v3 protocol events, published as the official server publishes it: named
        ``<method>|<namespace…>``, the event itself as data (the API numbers them per connection)."""
        published = protocol.run_event(event)
        if published is None:
            return
        name, envelope = published
        params = envelope["params"]
        if name == "values":
            seen.observe(params.get("data"))
            if params.get("interrupts"):
                seen.interrupted = True
        await self._bus.publish(run.run_id, name, envelope, thread_id=run.thread_id)

    def _callbacks(self, instrument: RunInstrument) -> list[Any]:
        """Model calls through their circuit breakers (first: a refused call must reach no other
        handler), spans, metrics and recorded node I/O of the run (``RunInstrument``), and Langfuse's
        handler when its keys are set. LangSmith needs none: LangChain's tracer follows
        ``LANGSMITH_TRACING``, with the run's ids in the config's metadata."""
        settings = self._settings
        callbacks: list[Any] = []
        if settings.breaker_failures > 0:
            guard = resilience.BreakerGuard(
                settings.breaker_failures, settings.breaker_window_s, settings.breaker_reset_s
            )
            callbacks.append(guard)
        callbacks.append(instrument)
        if settings.langfuse_enabled:
            callbacks.append(langfuse_handler())
        return callbacks

    async def _has_progress(self, graph: Pregel[Any, Any], run: Run) -> bool:
        """Did an earlier attempt of this run checkpoint? Then the new attempt continues from there."""
        state = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        return bool(state.metadata and state.metadata.get("run_id") == run.run_id)

    async def _failed(
        self,
        graph: Pregel[Any, Any],
        run: Run,
        config: RunnableConfig,
        status: RunStatus,
        error_type: str,
        message: str,
    ) -> RunOutcome:
        error = {"error": error_type, "message": message}
        await self._bus.publish(run.run_id, "error", error, thread_id=run.thread_id)
        return await self._outcome(graph, config, status, error)

    async def _outcome(
        self, graph: Pregel[Any, Any], config: RunnableConfig, status: RunStatus, error: Json | None
    ) -> RunOutcome:
        head = _with_checkpoint(config, None)
        state = await asyncio.shield(graph.aget_state(head))
        values = encoding.jsonable(state.values) if state.values is not None else None
        interrupts = thread_interrupts(state)
        flat = [i for items in interrupts.values() for i in items]
        return RunOutcome(
            status=status,
            output=run_output(values, flat, error),
            thread_status=thread_status_after(status, bool(state.next) or bool(flat)),
            thread_values=values,
            interrupts=interrupts,
            error=error,
        )

    async def rollback(self, run: Run) -> RunOutcome:
        """Undo a run cancelled with ``rollback``: delete the checkpoints it wrote, and report the thread
        as its head now is (the state before the run started)."""
        await delete_runs(self._graphs.persistence.checkpointer, run.thread_id, [run.run_id])
        config = self._config(run)
        async with self._graphs.graph(run.graph_id, config, access="threads.read") as graph:
            return await self._outcome(graph, config, "interrupted", None)

    async def sweep_expired_threads(self, limit: int | None = None) -> list[str]:
        """Act on threads past their TTL (their own, else ``GRAPHRUN_THREAD_TTL_MINUTES``). ``delete``:
        the thread, its runs and its checkpoints go; a run created on one meanwhile is cancelled with it.
        ``keep_latest``: its checkpoints are pruned to the latest and its TTL clock restarts."""
        s = self._settings
        expired = await self._store.expired_threads(
            s.thread_ttl_minutes, limit or s.ttl_sweep_limit, s.thread_ttl_strategy
        )
        saver = self._graphs.persistence.checkpointer
        for thread_id, strategy in expired:
            if strategy == "keep_latest":
                try:
                    await keep_latest(saver, thread_id)
                except Exception as exc:  # e.g. a DeltaChannel, or a prune by another worker: try next TTL
                    log.warning(
                        "ttl_prune_failed", thread_id=thread_id, error=type(exc).__name__, reason=str(exc)
                    )
                await self._store.touch_thread(
                    thread_id
                )  # the clock restarts either way: no thread blocks the sweep
                continue
            for run in await delete_thread(self._store, saver, thread_id):
                await self._bus.cancel(run.run_id, "interrupt")
            await self._bus.drop_thread(thread_id)  # its id may be taken again, by anyone
        return [thread_id for thread_id, _ in expired]

    async def cleanup(self, run: Run) -> None:
        """Stateless runs delete their temporary thread (and its checkpoints) unless asked to keep it."""
        if run.request.deletes_thread:
            await delete_thread(self._store, self._graphs.persistence.checkpointer, run.thread_id)


class _Watch:
    """Enforces a run's time limit and its nodes' (``Timeouts``) on ``deadline``, an ``asyncio.timeout``:
    when one is passed it appends why to ``why`` and expires the deadline. The run's limit is one timer;
    node limits are looked at every tenth of the shortest one."""

    def __init__(
        self,
        instrument: RunInstrument,
        limits: Timeouts,
        run_s: float,
        deadline: asyncio.Timeout,
        why: list[str],
    ) -> None:
        self._instrument, self._limits, self._run_s = instrument, limits, run_s
        self._deadline, self._why = deadline, why
        self._timer: asyncio.TimerHandle | None = None
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Watch:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._run_s, self._run_over)
        if self._limits.nodes:
            self._poller = asyncio.create_task(self._poll_nodes())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._poller is not None:
            self._poller.cancel()

    def _expire(self, why: str) -> None:
        if not self._why:
            self._why.append(why)
            self._deadline.reschedule(asyncio.get_running_loop().time())

    def _run_over(self) -> None:
        source = "its run_timeout_s" if self._limits.run_s else "GRAPHRUN_RUN_TIMEOUT_S"
        running = sorted({name for name, _ in self._instrument.running_nodes()})
        where = f" in node {', '.join(repr(n) for n in running)}" if running else ""
        self._expire(f"run exceeded {source} of {self._run_s:g}s{where}")

    async def _poll_nodes(self) -> None:
        every = min(1.0, max(0.01, min(self._limits.nodes.values()) / 10))
        while True:
            await asyncio.sleep(every)
            now = time.perf_counter()
            for name, started in self._instrument.running_nodes():
                limit = self._limits.node_limit(name)
                if limit is not None and now - started >= limit:
                    self._expire(f"node {name!r} exceeded its node_timeout_s of {limit:g}s")
                    return


_NOTHING = object()


@dataclass
class _Seen:
    """What the root graph's ``values`` stream showed: the last state and whether it stopped early."""

    values: Any = _NOTHING
    interrupted: bool = False

    def observe(self, chunk: Any) -> None:
        self.values = chunk
        if isinstance(chunk, dict) and "__interrupt__" in chunk:
            self.interrupted = True  # interrupt(), or a breakpoint inside a subgraph


def _ended_plainly(graph: Pregel[Any, Any], run: Run, seen: _Seen) -> bool:
    """Can the thread's state be taken from the stream instead of read back (``aget_state``, the most
    expensive call of a short run)? Only when nothing can have stopped the run early and the streamed
    values are the whole state: no interrupt seen, no static breakpoints, no output schema narrower
    than the state."""
    return (
        seen.values is not _NOTHING
        and isinstance(seen.values, dict)
        and not seen.interrupted
        and not run.request.interrupt_before
        and not run.request.interrupt_after
        and not graph.interrupt_before_nodes
        and not graph.interrupt_after_nodes
        and graph.output_channels == graph.stream_channels_asis
    )


# A stream part: (namespace, mode, chunk); `events` parts have mode "events" and the event as chunk.
_Part = tuple[tuple[str, ...], str, Any]


async def _astream_parts(
    graph: Pregel[Any, Any], graph_input: Any, run: Run, config: RunnableConfig, options: dict[str, Any]
) -> AsyncGenerator[_Part, None]:
    async for part in graph.astream(graph_input, config, **options):
        yield part if options["subgraphs"] else ((), *part)


async def _events_parts(
    graph: Pregel[Any, Any], graph_input: Any, run: Run, config: RunnableConfig, options: dict[str, Any]
) -> AsyncGenerator[_Part, None]:
    """``astream_events`` (v2), as the official server serves the ``events`` mode: the root run's
    ``on_chain_stream`` events carry the graph's own stream parts; every other event is an ``events`` part.
    A retry gets a fresh root run id (tracers refuse to see one twice)."""
    root = uuid.UUID(run.run_id) if run.attempt <= 1 else uuid.uuid4()
    events = graph.astream_events(graph_input, {**config, "run_id": root}, version="v2", **options)
    async for event in events:
        if "langsmith:hidden" in (event.get("tags") or ()):
            continue
        if event["event"] == "on_chain_stream" and event["run_id"] == str(root):
            chunk = event["data"]["chunk"]
            yield chunk if options["subgraphs"] else ((), *chunk)
        else:
            yield (), "events", event


async def _protocol_parts(
    graph: Pregel[Any, Any], graph_input: Any, run: Run, config: RunnableConfig, options: dict[str, Any]
) -> AsyncGenerator[_Part, None]:
    """LangGraph's v3 protocol events (``astream_events(version="v3")``), for a run started through the
    thread-stream protocol: LangGraph owns the stream modes and subgraphs there."""
    kwargs = {k: v for k, v in options.items() if k not in ("stream_mode", "subgraphs")}
    stream = await graph.astream_events(graph_input, config, version="v3", **kwargs)
    async with stream:
        async for event in stream:
            yield (), "protocol", event


def _graph_context(graph: Pregel[Any, Any], context: Json) -> Json:
    """The run's context as the graph receives it: only the keys its context schema names (the rest
    may be a mirrored ``configurable``), as the official server filters it. Always a mapping, even an
    empty one, so that LangGraph builds the schema's defaults (``None`` would leave
    ``runtime.context`` unset)."""
    if not context or graph.context_schema is None:
        return context
    try:
        schema = graph.get_context_jsonschema()
    except Exception:  # a schema that cannot be derived: hand the context over whole
        return context
    properties = (schema or {}).get("properties")
    if not properties:
        return context
    return {k: v for k, v in context.items() if k in properties}


# What LangGraph raises for an input that does not fit the graph: not a dict (InvalidUpdateError), no
# input at all (EmptyInputError), a pydantic input schema's ValidationError or a message that cannot be
# coerced (both ValueErrors).
_MISFIT = (InvalidUpdateError, EmptyInputError, ValueError)


def _input_misfit(exc: Exception, run: Run, started: set[str]) -> bool:
    """Did the run fail on its input, before any node of the graph ran? Only LangGraph's input step
    (``__start__``: the input's mapping onto the state and its reducers) ran by then."""
    fed = run.request.command is None and run.attempt == 1
    return fed and isinstance(exc, _MISFIT) and started <= {START}


def _input(value: Any, command: Json | None) -> Any:
    if command is not None:
        return Command(**command)
    return value


def _with_checkpoint(config: RunnableConfig, checkpoint: Json | None) -> RunnableConfig:
    configurable = {
        k: v for k, v in config.get("configurable", {}).items() if k not in ("checkpoint_id", "checkpoint_ns")
    }
    if checkpoint:
        configurable.update({k: v for k, v in checkpoint.items() if k in ("checkpoint_id", "checkpoint_ns")})
    return {**config, "configurable": configurable}
