"""Cancelling runs and waiting for them to end, for the routes that need it (runs, threads, assistants,
mcp), deleting a thread with its runs, and a run's first stream event (``announce``, also for ``submit``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi.responses import JSONResponse
from starlette.responses import Response, StreamingResponse

from graphrun import encoding, errors
from graphrun.api.deps import Services
from graphrun.checkpointer import delete_thread
from graphrun.models import Run
from graphrun.stores.base import Page
from graphrun.types import CancelAction, Json

log = structlog.get_logger("graphrun.api")

# How often a waiting request re-reads the run's row, in case its completion was not seen on the bus
# (the run finished before this process subscribed, or on another process).
recheck_interval_s = 1.0
# How long deleting a thread waits for its running runs to stop after cancelling them.
delete_wait_s = 10.0


async def cancel(
    svc: Services, thread_id: str, run_id: str, action: CancelAction, reason: str = "cancelled"
) -> Run:
    """Cancel a run, saying why (``Run.cancel_reason``)."""
    run = await svc.store.cancel_run(thread_id, run_id, action, reason)
    if run.status == "running":
        await svc.bus.cancel(run_id, action)
    else:  # it was pending: it ended here (interrupted, or deleted by a rollback), never having run
        if not run.request.announced:  # its stream still opens with its id
            await announce(svc, run)
        await svc.bus.finish(run_id, run.output, thread_id=thread_id)
        if run.request.deletes_thread:
            await delete_thread(svc.store, svc.graphs.persistence.checkpointer, run.thread_id)
    return run


async def delete_thread_now(svc: Services, tid: str) -> None:
    """Cancel what runs on the thread and let it stop, then delete the thread, its runs and checkpoints
    (in that order, so that no run writes a checkpoint after they are gone) and its event log."""
    for run in await svc.store.list_runs(tid, "running", Page(limit=1000)):
        try:
            stopping = await cancel(svc, tid, run.run_id, "interrupt")
        except errors.RunNotFound:
            continue  # it ended (or was rolled back) since it was listed: nothing left to stop
        with contextlib.suppress(errors.WaitTimedOut):
            await await_output(svc, stopping, delete_wait_s)
    saver = svc.graphs.persistence.checkpointer
    for run in await delete_thread(svc.store, saver, tid):  # claimed since: stop them too
        await svc.bus.cancel(run.run_id, "interrupt")
    await svc.bus.drop_thread(tid)  # its id may be taken again, by anyone


async def announce(svc: Services, run: Run) -> None:
    """Open the run's stream with its id and first attempt, as the official server's streams open."""
    first = {"run_id": run.run_id, "attempt": 1}
    await svc.bus.publish(run.run_id, "metadata", first, thread_id=run.thread_id)


async def await_output(svc: Services, run: Run, timeout_s: float | None = None) -> Json:
    """Block until the run ends (at most ``timeout_s``, default ``GRAPHRUN_WAIT_TIMEOUT_S``); answer
    what ``/wait`` and ``/join`` answer."""
    if run.finished:  # it ended before it was asked for: its row holds the output
        return run.output or {}
    limit = svc.settings.wait_timeout_s if timeout_s is None else timeout_s
    deadline = asyncio.get_running_loop().time() + limit
    while not await svc.bus.wait_done(run.run_id, recheck_interval_s):
        if svc.draining.is_set():
            raise errors.ShuttingDown(f"the server is shutting down; run {run.run_id} goes on: join it again")
        current = await reload(svc, run)
        if current is None or current.finished:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise errors.WaitTimedOut(
                f"run {run.run_id} did not finish within {limit:g}s; it goes on, join it again later"
            )
    output = svc.bus.output(run.run_id)
    if output is None:
        current = await reload(svc, run)
        output = current.output if current is not None else None
    return output or {}


async def reload(svc: Services, run: Run) -> Run | None:
    try:
        return await svc.store.find_run(run.run_id)
    except errors.RunNotFound:
        return None  # a stateless run whose temporary thread is already gone


class WaitCut(Exception):
    """Ends a padded /wait or /join body without its JSON, so that the client reconnects to the run's
    ``Location`` (the SDK does, up to five times), here or on another API process."""


async def wait_response(svc: Services, run: Run, headers: dict[str, str]) -> Response:
    """``/wait`` and ``/join``: the run's output. A run that ends within ``GRAPHRUN_WAIT_KEEPALIVE_S``
    is answered as plain JSON (errors keep their status). A longer one is answered 200 at once with a
    ``\n`` every interval, as the official server pads it, so that proxies and clients see bytes on a
    held connection (JSON parsers skip leading whitespace), then the output."""
    waiting = asyncio.ensure_future(await_output(svc, run))
    done, _ = await asyncio.wait({waiting}, timeout=svc.settings.wait_keepalive_s)
    if done:
        return JSONResponse(waiting.result(), headers=headers)
    return StreamingResponse(
        _padded(waiting, svc.settings.wait_keepalive_s, run.run_id),
        media_type="application/json",
        headers=headers,
    )


async def _padded(waiting: asyncio.Future[Json], interval_s: float, run_id: str) -> AsyncIterator[bytes]:
    """Once the 200 is sent an error can no longer be a status. A wait that ran out of time says so in
    the body (``__error__``, which the SDK raises); a server going away or a database not answering
    cuts the body, and the client rejoins (``WaitCut``)."""
    try:
        while not (await asyncio.wait({waiting}, timeout=interval_s))[0]:
            yield b"\n"
        try:
            output = waiting.result()
        except errors.WaitTimedOut as exc:
            output = {"__error__": {"error": type(exc).__name__, "message": exc.message}}
        except errors.GraphrunError as exc:
            log.info("wait_cut", run_id=run_id, reason=exc.message)
            raise WaitCut(exc.message) from exc
        yield encoding.dumps(output)
    finally:
        waiting.cancel()  # the client left: stop waiting for it
