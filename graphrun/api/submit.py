"""Run submission, the one way a run is written: every route that starts runs calls it (``/runs`` and
its stateless, batch, wait and stream forms, crons, MCP's tools, A2A's messages, the thread-stream
protocol's ``run.start``).

``new_run`` validates a request and authorizes it (the assistant, the caller's ``threads.create_run``
handler, the thread's scope), and describes the run (``NewRun``: everything the runner needs); nothing
is written. ``submit`` writes runs in one transaction and signals what follows (the run's first stream
event, cancels of the runs its strategy replaces, a worker wake-up). ``create`` is the two together.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict, Unpack

from graphrun import errors, priority, telemetry
from graphrun.api import schemas
from graphrun.api._resolve import check_assistant, require_checkpoint, resolve_assistant
from graphrun.api._resume import check_resume
from graphrun.api._runs import announce
from graphrun.api.authz import Access, as_uuid, in_scope, run_configurable, stamp_of
from graphrun.api.deps import Services
from graphrun.models import Run, RunRequest, merge_config, new_id, run_timeouts, utcnow
from graphrun.stores.base import NewRun
from graphrun.types import Json


class How(TypedDict, total=False):
    """How ``new_run`` describes a run, besides the request: see there."""

    announce: bool
    protocol: str | None


async def create(
    svc: Services, body: schemas.RunCreate, thread_id: str | None, access: Access, **how: Unpack[How]
) -> Run:
    """Validate and write one run (also for the thread-stream protocol's ``run.start``)."""
    new = await new_run(svc, body, thread_id, access, **how)
    return (await submit(svc, [new]))[0]


async def new_run(
    svc: Services,
    body: schemas.RunCreate,
    thread_id: str | None,
    access: Access,
    *,
    announce: bool = True,
    protocol: str | None = None,
) -> NewRun:
    """Validate a run request and describe the run; nothing is written yet. ``announce``: the API opens
    the run's stream with its ``metadata`` event as it writes the run (else the worker does, as it
    starts it). ``protocol``: see ``RunRequest.protocol``."""
    assistant = await resolve_assistant(svc, body.assistant_id)
    if assistant.metadata.get("created_by") != "system":  # as official: a graph's own is everyone's
        await check_assistant(access, assistant)
    metadata, thread_stamp = await _authorize_run(svc, access, body, thread_id, assistant.assistant_id)
    if body.webhook is not None and svc.webhook_url is not None:
        await svc.webhook_url.check(body.webhook)
    checkpoint = body.checkpoint.fields() if body.checkpoint else None
    if body.checkpoint_id:
        checkpoint = {**(checkpoint or {}), "checkpoint_id": body.checkpoint_id}
    if checkpoint and thread_id is None:
        raise errors.InvalidRequest("a stateless run has no thread, so no checkpoint to start from")
    if thread_id is not None:
        await require_checkpoint(svc, thread_id, checkpoint)
    if body.command is not None and "resume" in body.command.model_fields_set and not checkpoint:
        await _check_resume(svc, thread_id, body)
    durability = body.durability
    if durability is None and body.checkpoint_during is not None:
        durability = "async" if body.checkpoint_during else "exit"
    request = RunRequest(
        input=body.input,  # kept as sent, but a command wins: the runner ignores the input (as official)
        command=body.command.model_dump(exclude_unset=True) if body.command else None,
        config=merge_config(assistant.config, _configurable(body.config, access)),
        context={**assistant.context, **run_context(body)},
        stream_mode=body.stream_modes,
        stream_subgraphs=body.stream_subgraphs,
        stream_resumable=body.stream_resumable,
        interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after,
        checkpoint=checkpoint,
        durability=durability,
        on_completion=body.on_completion,
        temporary=thread_id is None,
        webhook=body.webhook,
        strict_resume=body.strict_resume,
        protocol=protocol,
        trace_context=telemetry.inject(),
        announced=announce,
    )
    run_timeouts(request.config, request.context)  # a bad run_timeout_s is refused now, not at run time
    new = NewRun(
        run_id=new_id(),
        thread_id=thread_id or new_id(),
        assistant_id=assistant.assistant_id,
        graph_id=assistant.graph_id,
        metadata=metadata,
        multitask_strategy=body.multitask_strategy,
        request=request,
        available_at=utcnow() + timedelta(seconds=body.after_seconds or 0),
        if_not_exists="create" if thread_id is None else body.if_not_exists,
        thread_stamp=thread_stamp,
    )
    caller = access.caller
    return await priority.assign(
        svc.priority,
        svc.store,
        assistant,
        new,
        thread_given=thread_id is not None,
        user=caller.user if caller is not None else None,
        permissions=caller.permissions if caller is not None else (),
    )


async def _authorize_run(
    svc: Services, access: Access, body: schemas.RunCreate, thread_id: str | None, assistant_id: str
) -> tuple[Json, Json]:
    """The caller's ``threads.create_run``: the run's metadata (a handler may add to it), and what a
    thread the run creates must carry to be the caller's. An existing thread must be in scope."""
    if not access.on:
        return body.metadata, {}
    value: Json = {
        "thread_id": as_uuid(thread_id) if thread_id else None,
        "assistant_id": as_uuid(assistant_id),
        "run_id": None,
        "status": "pending",
        "metadata": dict(body.metadata),
        "prevent_insert_if_inflight": body.multitask_strategy == "reject",
        "multitask_strategy": body.multitask_strategy,
        "if_not_exists": body.if_not_exists,
        "after_seconds": body.after_seconds,
        "kwargs": body.model_dump(
            include={"input", "command", "config", "context", "stream_mode", "webhook"}, exclude_unset=True
        ),
    }
    scope = await access.scope("threads", "create_run", value)
    if thread_id is not None:
        try:
            existing = await svc.store.get_thread(thread_id)
        except errors.ThreadNotFound:
            existing = None  # a new thread: the run writes it with the caller's stamp
        if existing is not None and not in_scope(scope, existing.metadata):
            raise errors.ThreadNotFound(f"Thread {thread_id} not found")
    metadata = value.get("metadata")
    return (metadata if isinstance(metadata, dict) else body.metadata), stamp_of(scope)


def _configurable(config: Json, access: Access) -> Json:
    """The request's config with the headers ``http.configurable_headers`` forwards in ``configurable``
    (the request's own keys win over them) and, with auth on, the caller (``langgraph_auth_user``...,
    which win over the request's: a client cannot pose as another user to its graph)."""
    caller = run_configurable(access.caller) if access.caller is not None else {}
    if not access.forwarded and not caller:
        return config
    return {**config, "configurable": {**access.forwarded, **(config.get("configurable") or {}), **caller}}


def run_context(body: schemas.RunCreate) -> Json:
    """The request's context, as the official server takes it: ``context``, or else the request's
    ``config.configurable`` (the runner keeps only the keys the graph's context schema names); giving
    both is refused."""
    configurable = body.config.get("configurable") or {}
    if body.context and configurable:
        raise errors.BadRequest(
            "Cannot specify both configurable and context: set context alone (context replaces "
            "configurable since LangGraph 0.6)"
        )
    return dict(body.context or configurable)


async def _check_resume(svc: Services, thread_id: str | None, body: schemas.RunCreate) -> None:
    assert body.command is not None
    if thread_id is None:  # as the official server: a 400, for a resume value that is truthy only
        if body.command.resume:
            raise errors.BadRequest(
                "You must provide a thread_id when resuming. (A stateless run has no thread, so no "
                "interrupt to resume.)"
            )
        return
    try:
        thread = await svc.store.get_thread(thread_id)
    except errors.ThreadNotFound:
        if body.if_not_exists != "create":
            raise
        raise errors.InvalidRequest(f"thread {thread_id} is new: it has no interrupt to resume") from None
    check_resume(thread, body.command.resume)


async def submit(svc: Services, runs: list[NewRun]) -> list[Run]:
    """Write the runs in one transaction, then signal the runs their strategies cancel and the worker."""
    created = await svc.store.create_runs(runs)
    for new, result in zip(runs, created, strict=True):
        # The run's stream opens with its id, as the official server's does (the worker announces retries,
        # and the first attempt of a run the API did not announce).
        if new.request.announced:
            await announce(svc, result.run)
        for cancelled in result.cancelled:
            await svc.bus.cancel(cancelled.run_id, new.multitask_strategy)
    svc.bus.notify_new_run()
    return [c.run for c in created]
