"""The thread-stream protocol's commands and event stream, shared by its HTTP and WebSocket transports
(``routes/protocol.py``): what a command does, and a thread's events as protocol events for one filter.

Commands: ``run.start`` writes a run (creating the thread), ``input.respond`` resumes interrupts; the
ones that need a live session (``agent.getTree``, ``subscription.reconnect``) answer ``no_such_run``, as
the official server's do over HTTP. Subscriptions are the transport's: a stream (SSE) or a socket's
``subscription.subscribe`` (WebSocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import pydantic

from graphrun import errors, metrics, protocol
from graphrun.api import schemas
from graphrun.api._resolve import owned_thread
from graphrun.api.authz import Access
from graphrun.api.deps import Services
from graphrun.api.submit import create
from graphrun.stores.base import Page
from graphrun.types import Json

# How long ``input.respond`` waits for a busy thread to record the interrupt it answers.
interrupt_settle_s = 5.0

METHODS = frozenset(
    {
        "run.start",
        "input.respond",
        "agent.getTree",
        "subscription.subscribe",
        "subscription.unsubscribe",
        "subscription.reconnect",
    }
)
_MULTITASK = frozenset({"reject", "rollback", "interrupt", "enqueue"})


class CommandError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def object_of(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def error_envelope(command_id: Any, code: str, message: str) -> Json:
    return {"type": "error", "id": command_id, "error": code, "message": message}


async def dispatch(svc: Services, access: Access, thread_id: str, method: str, params: Json) -> Json:
    if method == "run.start":
        return await _run_start(svc, access, thread_id, params)
    if method == "input.respond":
        return await _input_respond(svc, access, thread_id, params)
    if method == "subscription.subscribe":
        try:
            stream_filter(params)
        except ValueError as exc:
            raise CommandError("invalid_argument", f"subscription.subscribe: {exc}") from None
        return {"subscription_id": str(uuid.uuid4()), "replayed_events": 0}
    if method == "subscription.unsubscribe":
        subscription_id = params.get("subscription_id")
        if not isinstance(subscription_id, str):
            raise CommandError("invalid_argument", "subscription.unsubscribe requires a subscription_id.")
        raise CommandError("no_such_subscription", f"Unknown subscription: {subscription_id}")
    raise CommandError("no_such_run", "No active run is bound to this thread.")


async def _run_start(svc: Services, access: Access, thread_id: str, params: Json) -> Json:
    assistant_id = params.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise CommandError("invalid_argument", "run.start requires an assistant_id.")
    _check_tracer(params.get("langsmith_tracer"))
    config = object_of(params.get("config"))
    configurable = object_of(config.get("configurable"))
    checkpoint_id = configurable.get("checkpoint_id")
    if checkpoint_id is not None:
        if not isinstance(checkpoint_id, str) or not checkpoint_id.strip():
            raise CommandError(
                "invalid_argument", "config.configurable.checkpoint_id must be a non-empty string."
            )
        try:
            uuid.UUID(checkpoint_id)
        except ValueError:
            raise CommandError(
                "invalid_argument", f"Invalid config.configurable.checkpoint_id: {checkpoint_id!r}."
            ) from None
        configurable = {k: v for k, v in configurable.items() if k != "checkpoint_id"}
    graph_input = params.get("input")
    # Input on a thread waiting at an interrupt answers it, as the official server takes it.
    resume = graph_input is not None and checkpoint_id is None and await _waiting(svc, thread_id)
    strategy = params.get("multitaskStrategy", params.get("multitask_strategy"))
    body = {
        "assistant_id": assistant_id,
        "input": None if resume else graph_input,
        "command": {"resume": graph_input} if resume else None,
        "config": {**config, "configurable": configurable},
        "metadata": object_of(params.get("metadata")),
        "checkpoint_id": checkpoint_id,
        "stream_subgraphs": True,
        "stream_resumable": True,
        "on_completion": "keep",
        "if_not_exists": "create",
        "multitask_strategy": strategy if strategy in _MULTITASK else "enqueue",
    }
    run = await _start(svc, access, thread_id, body)
    return {"run_id": run}


def _check_tracer(tracer: Any) -> None:
    if tracer is None:
        return
    if not isinstance(tracer, dict):
        raise CommandError("invalid_argument", "langsmith_tracer must be an object.")
    unknown = tracer.keys() - {"project_name", "example_id"}
    if unknown:
        raise CommandError(
            "invalid_argument", f"langsmith_tracer has unsupported fields: {sorted(unknown)!r}."
        )
    for key, value in tracer.items():
        if not isinstance(value, str):
            raise CommandError("invalid_argument", f"langsmith_tracer.{key} must be a string.")


async def _start(svc: Services, access: Access, thread_id: str, body: Json) -> str:
    """Write the run as ``POST /threads/{id}/runs`` would; any refusal is the command's error."""
    try:
        run_body = schemas.RunCreate.model_validate({k: v for k, v in body.items() if v is not None})
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        raise CommandError("invalid_argument", problems) from None
    try:
        run = await create(svc, run_body, thread_id, access, protocol="v2")
    except errors.GraphrunError as exc:
        raise CommandError("unknown_error", exc.message) from None
    return run.run_id


async def _waiting(svc: Services, thread_id: str) -> bool:
    """Does the thread wait at an interrupt (its row's interrupts, once a busy thread has settled)?"""
    return bool(await _pending_interrupts(svc, thread_id))


async def _pending_interrupts(svc: Services, thread_id: str) -> set[str] | None:
    """The ids of the interrupts the thread waits on; None when there is no such thread. A thread still
    ``busy`` is given ``interrupt_settle_s`` to record them (its run may be finishing right now)."""
    deadline = asyncio.get_running_loop().time() + interrupt_settle_s
    while True:
        try:
            thread = await svc.store.get_thread(thread_id)
        except errors.ThreadNotFound:
            return None
        ids = {i["id"] for items in thread.interrupts.values() for i in items if isinstance(i.get("id"), str)}
        if ids or thread.status != "busy" or asyncio.get_running_loop().time() > deadline:
            return ids
        await asyncio.sleep(0.05)


async def _input_respond(svc: Services, access: Access, thread_id: str, params: Json) -> Json:
    entries = _respond_entries(params)
    pending = await _pending_interrupts(svc, thread_id)
    if pending is None:
        raise CommandError("no_such_run", "No interrupted run is bound to this thread.")
    for interrupt_id, _ in entries:
        if interrupt_id not in pending:
            raise CommandError("no_such_interrupt", f"Unknown or already-consumed interrupt: {interrupt_id}")
    thread = await svc.store.get_thread(thread_id)
    assistant_id = thread.metadata.get("assistant_id")
    if not isinstance(assistant_id, str):
        raise CommandError("no_such_run", "No interrupted run is bound to this thread.")
    command: Json = {"resume": dict(entries)}
    for key in ("update", "goto"):
        if params.get(key) is not None:
            command[key] = params[key]
    await _start(
        svc,
        access,
        thread_id,
        {
            "assistant_id": assistant_id,
            "command": command,
            "config": object_of(params.get("config")),
            "metadata": object_of(params.get("metadata")),
            "stream_subgraphs": True,
            "stream_resumable": True,
            "on_completion": "keep",
            "multitask_strategy": "enqueue",
        },
    )
    return {}


def _respond_entries(params: Json) -> list[tuple[str, Any]]:
    """``{interrupt_id, response, namespace?}`` or ``{responses: [...]}`` as (interrupt id, response)."""
    raw = params.get("responses")
    items = raw if isinstance(raw, list) else [params]
    if isinstance(raw, list) and not raw:
        raise CommandError("invalid_argument", "input.respond requires at least one response.")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            raise CommandError("invalid_argument", "input.respond responses entries must be objects.")
        if not isinstance(item.get("interrupt_id"), str):
            raise CommandError("invalid_argument", "input.respond requires an interrupt_id.")
        namespace = item.get("namespace", [])
        if not isinstance(namespace, list) or not all(isinstance(s, str) for s in namespace):
            raise CommandError(
                "invalid_argument", "input.respond requires namespace to be a list of strings."
            )
        entries.append((item["interrupt_id"], item.get("response")))
    return entries


def stream_filter(params: Json) -> protocol.Filter:
    """A subscription's filter from a stream's body or a ``subscription.subscribe``'s params; ValueError
    says what is wrong with it."""
    channels = params.get("channels")
    if not isinstance(channels, list) or not channels:
        raise ValueError("channels is required and must be a non-empty array")
    bad = [c if isinstance(c, str) else repr(c) for c in channels if not protocol.supported_channel(c)]
    if bad:
        raise ValueError(
            f"channels contains unsupported entries: {', '.join(bad[:5])}. Allowed: "
            f"{', '.join(sorted(protocol.CHANNELS))}, or any `custom:<name>`."
        )
    raw = params.get("namespaces")
    namespaces = None
    if isinstance(raw, list):
        kept = tuple(tuple(ns) for ns in raw if isinstance(ns, list) and all(isinstance(s, str) for s in ns))
        namespaces = kept or None
    depth = params.get("depth")
    depth = depth if isinstance(depth, int) and not isinstance(depth, bool) and depth >= 0 else None
    return protocol.Filter(frozenset(channels), namespaces, depth)


def since_of(params: Json) -> int | None:
    """The ``seq`` a client already has (it skips the events up to it), if it gave a valid one."""
    since = params.get("since")
    return since if isinstance(since, int) and not isinstance(since, bool) and since >= 0 else None


async def thread_events(
    svc: Services, thread_id: str, wanted: protocol.Filter, since: int | None, recheck: Access | None
) -> AsyncGenerator[Json | None, None]:
    """The thread's log from its start, through a session of this subscription, filtered; None every
    ``GRAPHRUN_SSE_KEEPALIVE_S`` of silence (a transport's keepalive). ``recheck`` is the caller's access
    when the thread was not written at subscription: at its first event the thread exists, and a stream
    of a thread another owner created ends there, having sent nothing. It ends when the process drains."""

    async def run_lookup(run_id: str) -> protocol.RunInfo | None:
        with contextlib.suppress(errors.NotFound):
            run = await svc.store.get_run(thread_id, run_id)
            return protocol.RunInfo(run.graph_id, run.status)
        return None

    async def interrupts_pending(run_id: str) -> bool:
        with contextlib.suppress(errors.NotFound):
            if not (await svc.store.get_thread(thread_id)).interrupts:
                return False
            recent = await svc.store.list_runs(thread_id, None, Page(limit=20))
            started = next((r.run_id for r in recent if r.status != "pending"), None)
            return started == run_id
        return False

    session = protocol.Session(run_lookup, interrupts_pending)
    subscription = svc.bus.subscribe_thread(thread_id, "-1", svc.settings.sse_keepalive_s)
    gauge = metrics.STREAM_SUBSCRIBERS.labels("protocol")
    async with contextlib.aclosing(subscription) as source:
        gauge.inc()
        try:
            async for item in source:
                if svc.draining.is_set():
                    return
                if item is None:
                    yield None
                    continue
                if recheck is not None:
                    try:
                        await owned_thread(svc, recheck, thread_id)
                    except errors.NotFound:
                        return
                    recheck = None
                for event in await session.feed(item.id, item.event, item.data):
                    if (since is not None and event["seq"] <= since) or not wanted.matches(event):
                        continue
                    yield event
        finally:
            gauge.dec()
