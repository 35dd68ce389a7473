"""The worker: claims pending runs, executes them with the runner, holds their leases, reaps the lost.

Shutdown, in order (``Worker.__aexit__``), sized for Kubernetes' ``terminationGracePeriodSeconds``
(keep it above ``GRAPHRUN_SHUTDOWN_GRACE_S`` plus a few seconds):
1. stop claiming new runs (leases of running ones are renewed until the end);
2. let running runs finish for up to ``shutdown_grace_s``;
3. ask the rest to drain (``RunControl.request_drain``): each finishes its current step, checkpoints and
   stops; it goes back to ``pending`` with its progress, for this or another worker to finish;
4. a run that has not drained within ``drain_timeout_s`` is cancelled and released all the same (its
   last checkpoint is kept; the step it was in runs again on the next attempt).

Why over ~400 lines (issue 24): it is one class whose loops (claim, heartbeat, reap, sweep, crons,
breakers) and the shutdown order above share its state (the runs it holds, their leases and their tasks);
moved apart, that state would have to be passed around.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog
from langchain_core.tracers.langchain import wait_for_all_tracers
from langgraph.errors import GraphDrained
from langgraph_sdk import Priority
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from graphrun import crons, errors, fence, metrics, redact, resilience, telemetry
from graphrun.instrument import flush_langfuse
from graphrun.models import Run, RunOutcome, utcnow
from graphrun.runner import RunHandle, Runner
from graphrun.settings import Settings
from graphrun.stores.base import ControlStore
from graphrun.streams import EventBus
from graphrun.webhooks import Webhooks

log = structlog.get_logger("graphrun.worker")

drain_timeout_s = 10.0
# The queue depth a worker reports counts at most this many pending runs (it reads their rows).
_QUEUE_DEPTH_LIMIT = 10_000
_CRON_BATCH = 100  # crons fired per poll at most; the rest wait for the next one


@dataclass
class _Active:
    handle: RunHandle
    task: asyncio.Task[None]
    lease: fence.Lease


def _observe(run: Run, outcome: RunOutcome, seconds: float) -> None:
    metrics.RUNS.labels(run.graph_id, outcome.status).inc()
    metrics.RUN_DURATION.labels(run.graph_id, outcome.status).observe(seconds)
    span = trace.get_current_span()
    span.set_attribute("graphrun.status", outcome.status)
    if outcome.status in ("error", "timeout"):
        error = outcome.error or {}
        span.set_status(
            Status(StatusCode.ERROR, redact.text(f"{error.get('error')}: {error.get('message')}"))
        )


class Worker:
    """Use as ``async with Worker(...)``: it works in the background until the block exits."""

    def __init__(
        self,
        settings: Settings,
        store: ControlStore,
        bus: EventBus,
        runner: Runner,
        *,
        worker_id: str | None = None,
        recover_orphans: bool = False,
        webhooks: Webhooks | None = None,
        wakeup: Callable[[float], Coroutine[Any, Any, None]] | None = None,
        priority: Priority | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._runner = runner
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._recover_orphans = recover_orphans
        self._webhooks = webhooks
        self._wakeup = wakeup  # besides the bus: e.g. PostgreSQL LISTEN/NOTIFY across processes
        self._priority = priority  # priority.path: assigns the priority of the threads crons run on
        self._active: dict[str, _Active] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None
        self._pulse: asyncio.Task[None] | None = None
        self._beat_at = time.monotonic()  # the pulse loop's last turn (``stalled``)

    async def __aenter__(self) -> Worker:
        if self._recover_orphans:
            # The caller guarantees no other process executes these runs (embedded mode's data-dir lock):
            # every run still marked running was left by a process that died. Take them back now.
            recovered = await self._store.reap_expired(self._settings.max_attempts, all_running=True)
            if recovered:
                log.warning("runs_recovered", runs=[r.run_id for r in recovered])
                await self._settle_reaped(recovered)
        self._bus.on_cancel(self._on_cancel)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name=f"{self.worker_id}:claim"),
            asyncio.create_task(self._reap_loop(), name=f"{self.worker_id}:reap"),
            asyncio.create_task(self._sweep_loop(), name=f"{self.worker_id}:sweep"),
            asyncio.create_task(self._breaker_loop(), name=f"{self.worker_id}:breakers"),
        ]
        if self._settings.cron_interval_s > 0:
            self._loops.append(asyncio.create_task(self._cron_loop(), name=f"{self.worker_id}:crons"))
        # Heartbeats go on through the shutdown below: runs still finishing must keep their leases.
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"{self.worker_id}:heartbeat")
        self._pulse = asyncio.create_task(self._pulse_loop(), name=f"{self.worker_id}:pulse")
        log.info("worker_started", worker_id=self.worker_id, concurrency=self._settings.worker_concurrency)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        # 1. stop taking work
        self._stopping.set()
        self._bus.notify_new_run()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        # 2. let running runs finish within the grace period
        tasks = [a.task for a in self._active.values()]
        if tasks:
            log.info("worker_draining", worker_id=self.worker_id, runs=len(tasks))
            await asyncio.wait(tasks, timeout=self._settings.shutdown_grace_s)
        # 3. ask the rest to stop at their next step boundary; 4. cancel what still runs
        for active in list(self._active.values()):
            active.handle.control.request_drain("shutdown")
        tasks = [a.task for a in self._active.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=drain_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for beat in (self._heartbeat, self._pulse):
            if beat is not None:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)
        # LangSmith's tracer sends in the background: what it still holds goes before the process ends.
        if self._settings.langsmith_enabled:
            await asyncio.to_thread(wait_for_all_tracers)
        if self._settings.langfuse_enabled:
            await asyncio.to_thread(flush_langfuse)
        log.info("worker_stopped", worker_id=self.worker_id)

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            free = self._settings.worker_concurrency - len(self._active)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                runs = await self._store.claim_runs(self.worker_id, free, self._settings.lease_s)
            except Exception:
                log.exception("claim_failed", worker_id=self.worker_id)
                runs = []
            for run in runs:
                self._start(run)
            if len(runs) < free:  # nothing more is ready now: wait to be told (or poll)
                await self._wait_for_runs(self._settings.poll_interval_s)

    async def _wait_for_runs(self, timeout_s: float) -> None:
        """Until a run may be waiting: told by the bus, by the extra wake-up, or at the poll interval."""
        if self._wakeup is None:
            await self._bus.wait_new_run(timeout_s)
            return
        waits = [
            asyncio.create_task(self._bus.wait_new_run(timeout_s)),
            asyncio.create_task(self._wakeup(timeout_s)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def _start(self, run: Run) -> None:
        previous = self._active.get(run.run_id)
        if previous is not None:
            # Our lease on an earlier attempt expired and the run was claimed again: that attempt can no
            # longer finish it (the store checks the attempt), so stop it rather than run it twice.
            log.warning("run_attempt_superseded", run_id=run.run_id, attempt=previous.handle.run.attempt)
            previous.task.cancel()
        handle = RunHandle(run)
        s = self._settings
        lease = fence.Lease(
            lambda: self._store.renew_lease(run, self.worker_id, s.lease_s), s.lease_s, s.heartbeat_interval_s
        )
        task = asyncio.create_task(self._execute(handle, lease), name=f"run:{run.run_id}:{run.attempt}")
        self._active[run.run_id] = _Active(handle, task, lease)

    async def _execute(self, handle: RunHandle, lease: fence.Lease) -> None:
        """One attempt of a run, in the run's span (continuing the trace of the request that wrote it),
        its ids bound to every log line, its checkpoint writes fenced by its lease."""
        fence.hold(lease)
        run = handle.run
        bound = structlog.contextvars.bound_contextvars(
            run_id=run.run_id,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            graph_id=run.graph_id,
            attempt=run.attempt,
        )
        attributes: dict[str, Any] = {
            "graphrun.run_id": run.run_id,
            "graphrun.thread_id": run.thread_id,
            "graphrun.assistant_id": run.assistant_id,
            "graphrun.graph_id": run.graph_id,
            "graphrun.attempt": run.attempt,
        }
        if run.attempt == 1:  # waited in the queue since it was written (or since its delay ended)
            ready_at = max(run.created_at, run.available_at or run.created_at)
            waited = max(0.0, (run.updated_at - ready_at).total_seconds())
            attributes["graphrun.queue_wait_s"] = waited
            metrics.QUEUE_WAIT.labels(run.graph_id).observe(waited)
        span = telemetry.tracer.start_as_current_span(
            "run",
            context=telemetry.extract(run.request.trace_context),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        with bound, span, metrics.RUNS_IN_FLIGHT.labels(run.graph_id).track_inprogress():
            await self._attempt(handle)

    async def _attempt(self, handle: RunHandle) -> None:
        run = handle.run
        started = time.perf_counter()
        try:
            if run.cancel_action == "rollback":
                # Rolled back while an earlier attempt ran, whose worker died before undoing it.
                handle.cancel_action = handle.run.cancel_action
                handle.finishing = True
                await asyncio.shield(self._rollback(run))
                return
            log.info("run_started", attempt=run.attempt)
            try:
                outcome = await self._runner.execute(handle)
            except (asyncio.CancelledError, GraphDrained):
                if handle.cancel_action is None:  # shutdown, drain or a superseded attempt
                    await self._release(run)
                    return
                outcome = RunOutcome.cancelled()
            except errors.StoreUnavailable as exc:
                log.warning("run_handed_back", attempt=run.attempt, reason=exc.message)
                await self._release(run)
                return
            except errors.LeaseLost:
                log.warning("run_lease_lost", attempt=run.attempt)  # a checkpoint write was refused
                return
            except Exception as exc:
                log.exception("run_crashed")
                outcome = RunOutcome.crashed(exc)
            handle.finishing = True
            _observe(run, outcome, time.perf_counter() - started)
            if handle.cancel_action == "rollback":
                await asyncio.shield(self._rollback(run))
            else:
                await asyncio.shield(self._finish(run, outcome))
        finally:
            active = self._active.get(run.run_id)
            if active is not None and active.handle is handle:
                del self._active[run.run_id]
            self._slot_freed.set()

    async def _finish(self, run: Run, outcome: RunOutcome) -> None:
        try:
            await self._store.finish_run(run, outcome)
        except errors.LeaseLost:
            log.warning("run_lease_lost", attempt=run.attempt)
            return
        log.info("run_finished", status=outcome.status, attempt=run.attempt)
        await self._bus.finish(run.run_id, outcome.output, thread_id=run.thread_id)
        await self._runner.cleanup(run)
        if self._webhooks is not None and run.request.webhook is not None:
            # The claimed row's updated_at is when this attempt started.
            self._webhooks.send(run, outcome, started_at=run.updated_at)

    async def _rollback(self, run: Run) -> None:
        """The run is undone: its checkpoints, then its row, go; its thread is as before it started."""
        try:
            outcome = await self._runner.rollback(run)
            await self._store.rollback_run(run, outcome)
        except errors.LeaseLost:
            log.warning("run_lease_lost", attempt=run.attempt)
            return
        except Exception:
            log.exception("run_rollback_failed", attempt=run.attempt)
            await self._finish(run, RunOutcome.cancelled())
            return
        log.info("run_rolled_back", attempt=run.attempt)
        await self._bus.finish(run.run_id, None, thread_id=run.thread_id)
        await self._runner.cleanup(run)

    async def _release(self, run: Run) -> None:
        """Give the run back to pending. If the database does not answer, its lease expires instead and
        a reaper gives it back."""
        try:
            await asyncio.shield(self._store.release_run(run))
            log.info("run_released", attempt=run.attempt)
        except errors.LeaseLost:
            pass
        except errors.StoreUnavailable as exc:
            log.warning("run_release_failed", attempt=run.attempt, reason=exc.message)
        self._bus.notify_new_run()

    async def _on_cancel(self, run_id: str, action: str) -> None:
        active = self._active.get(run_id)
        if active is not None and active.handle.cancel_action is None and not active.handle.finishing:
            active.handle.cancel_action = action
            active.task.cancel()

    async def _settle_reaped(self, reaped: list[Run]) -> None:
        """Runs the reaper ended (attempts exhausted, or cancelled before their worker died) are done:
        tell their waiters, and delete the temporary threads of stateless ones."""
        for old in reaped:
            try:
                run = await self._store.find_run(old.run_id)
            except errors.RunNotFound:
                continue
            if run.finished:
                await self._bus.finish(run.run_id, run.output, thread_id=run.thread_id)
                await self._runner.cleanup(run)
        self._bus.notify_new_run()

    def stalled(self, bound_s: float) -> str | None:
        """Why this worker does not work, or None: none of its loops ended, and its event loop turned
        within ``bound_s``. Safe from another thread (the metrics server's ``/ok``): it only reads. A graph
        that blocks the event loop stops every loop, and the liveness probe then restarts the process;
        PostgreSQL or Redis being down does not count (a restart would not help)."""
        beats = [*self._loops, self._heartbeat, self._pulse]
        ended = [t.get_name() for t in beats if t is not None and t.done()]
        if ended and not self._stopping.is_set():
            return f"loops ended: {', '.join(ended)}"
        since_s = time.monotonic() - self._beat_at
        if since_s > bound_s:
            return f"the event loop has not turned for {since_s:.0f} s (bound {bound_s:.0f} s)"
        return None

    async def _pulse_loop(self) -> None:
        while True:
            self._beat_at = time.monotonic()
            await asyncio.sleep(min(1.0, self._settings.heartbeat_interval_s))

    async def _heartbeat_loop(self) -> None:
        while True:
            metrics.WORKER_HEARTBEAT.set_to_current_time()
            await asyncio.sleep(self._settings.heartbeat_interval_s)
            for run_id, active in list(self._active.items()):
                try:
                    sent_at = time.monotonic()
                    action = await self._store.renew_lease(
                        active.handle.run, self.worker_id, self._settings.lease_s
                    )
                    active.lease.renewed(sent_at)
                except errors.LeaseLost:
                    if self._active.get(run_id) is not active or active.handle.finishing:
                        continue  # it ended while we renewed: nothing was lost
                    log.warning("run_lease_lost", run_id=run_id)
                    active.task.cancel()
                    continue
                except Exception:
                    log.exception("heartbeat_failed", run_id=run_id)
                    continue
                if action is not None:
                    await self._on_cancel(run_id, action)

    async def _breaker_loop(self) -> None:
        """Report this process's circuit breakers (``graphrun.resilience``) to the bus, for ``/ready``:
        within a second of a change, and again every heartbeat while there are any (a report lives one
        lease, so a dead worker's goes with it)."""
        reported: dict[str, str] = {}
        last = 0.0
        while True:
            await asyncio.sleep(min(1.0, self._settings.heartbeat_interval_s))
            states: dict[str, str] = dict(resilience.breaker_states())
            stale = time.monotonic() - last >= self._settings.heartbeat_interval_s
            if states == reported and not (states and stale):
                continue
            try:
                await self._bus.report_breakers(self.worker_id, states, self._settings.lease_s)
            except Exception:
                log.exception("breaker_report_failed")
                continue
            reported, last = states, time.monotonic()

    async def _sweep_loop(self) -> None:
        """Delete threads past their TTL. Every worker sweeps; deleting a thread twice is harmless."""
        while True:
            await asyncio.sleep(self._settings.ttl_sweep_interval_s)
            try:
                swept = await self._runner.sweep_expired_threads()
            except Exception:
                log.exception("ttl_sweep_failed")
                continue
            if swept:
                log.info("threads_expired", threads=swept)
            if self._settings.run_retention_days > 0:
                try:
                    deleted = await self._store.delete_old_runs(self._settings.run_retention_days, 1000)
                except Exception:
                    log.exception("run_retention_sweep_failed")
                    continue
                if deleted:
                    log.info("runs_expired", runs=deleted)

    async def _cron_loop(self) -> None:
        """Fire the crons whose tick has come. Every worker looks; the store lets one fire each tick."""
        while True:
            await asyncio.sleep(self._settings.cron_interval_s)
            try:
                fired = await crons.fire_due(self._store, utcnow(), _CRON_BATCH, self._priority)
            except Exception:
                log.exception("cron_poll_failed")
                continue
            written = [result for result in fired if result.run is not None]
            for result in written:
                assert result.run is not None
                for cancelled in result.cancelled:  # the new run's multitask strategy stops these
                    await self._bus.cancel(cancelled.run_id, result.run.multitask_strategy)
            if written:
                self._bus.notify_new_run()

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_s / 2)
            try:
                reaped = await self._store.reap_expired(self._settings.max_attempts)
                pending = await self._store.inflight_runs("pending", None, _QUEUE_DEPTH_LIMIT)
                metrics.QUEUE_DEPTH.set(len(pending))
            except Exception:
                log.exception("reap_failed")
                continue
            if reaped:
                log.warning("runs_reaped", runs=[r.run_id for r in reaped])
                await self._settle_reaped(reaped)
