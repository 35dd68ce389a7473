"""Crons: what a cron's tick writes, and firing the due ones.

A cron keeps a *template* of its run, made from the run request the API validated when the cron was
created or changed. At each tick a worker turns the template into a run against the assistant as it is
then (its config and context under the template's, as for any run), and ``ControlStore.fire_cron``
writes it in the transaction that moves the cron to its next tick: across any number of workers, a tick
fires once, and a worker killed in between leaves the tick unfired for the next one to take.

After downtime the ticks missed are not replayed: the first poll fires the cron once and its next tick
is the first one after now, as the official server does.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import structlog
from langgraph_sdk import Priority

from graphrun import priority as priorities
from graphrun import schedule
from graphrun.models import Assistant, Cron, RunRequest, merge_config, new_id
from graphrun.stores.base import ControlStore, Fired, NewRun
from graphrun.types import Json

log = structlog.get_logger("graphrun.crons")

_REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(RunRequest))


def template_of(new: NewRun, config: Json, context: Json) -> Json:
    """A validated run (``new``) as the cron keeps it. ``config`` and ``context`` are the request's own,
    before the assistant's: each tick puts them on top of the assistant's config and context then."""
    request = dataclasses.asdict(new.request)
    request.update(config=config, context=context, trace_context={}, announced=False)
    return {
        "graph_id": new.graph_id,
        "metadata": new.metadata,
        "multitask_strategy": new.multitask_strategy,
        "thread_stamp": new.thread_stamp,
        "request": request,
    }


def run_of(cron: Cron, assistant: Assistant, now: datetime) -> NewRun:
    """The run of one tick: on the cron's thread, or on a new one for a stateless cron."""
    t = cron.template
    fields = {k: v for k, v in t["request"].items() if k in _REQUEST_FIELDS}
    config = merge_config(assistant.config, fields.get("config") or {})
    config["configurable"] = {**config.get("configurable", {}), "cron_id": cron.cron_id}
    fields["config"] = config
    fields["context"] = {**assistant.context, **(fields.get("context") or {})}
    if cron.thread_id is None:
        fields["temporary"] = True
        fields["on_completion"] = cron.on_run_completed or "delete"
    return NewRun(
        run_id=new_id(),
        thread_id=cron.thread_id or new_id(),
        assistant_id=cron.assistant_id,
        graph_id=assistant.graph_id,
        metadata=dict(t.get("metadata") or {}),
        multitask_strategy=t.get("multitask_strategy", "enqueue"),
        request=RunRequest(**fields),
        available_at=now,
        if_not_exists="create" if cron.thread_id is None else "reject",
        thread_stamp=dict(t.get("thread_stamp") or {}),
    )


async def fire_due(
    store: ControlStore, now: datetime, limit: int, priority: Priority | None = None
) -> list[Fired]:
    """Fire the crons due at ``now`` (at most ``limit``); what each claimed tick did. A tick another
    worker fired first is left out. ``priority`` (``priority.path``) assigns the settings of a thread
    that has none, told the ``cron_id``."""
    fired: list[Fired] = []
    for cron in await store.due_crons(now, limit):
        try:
            assistant = await store.get_assistant(cron.assistant_id)
            run = await priorities.assign(
                priority,
                store,
                assistant,
                run_of(cron, assistant, now),
                thread_given=cron.thread_id is not None,
                user=priorities.Unauthenticated(identity=cron.user_id or ""),
                cron_id=cron.cron_id,
            )
            result = await store.fire_cron(cron, schedule.next_tick(cron.schedule, now, cron.timezone), run)
        except Exception:
            log.exception("cron_fire_failed", cron_id=cron.cron_id)
            continue
        if not result.claimed:
            continue
        if result.run is None:
            log.warning("cron_tick_skipped", cron_id=cron.cron_id, reason=result.skipped)
        else:
            log.info(
                "cron_fired", cron_id=cron.cron_id, run_id=result.run.run_id, thread_id=result.run.thread_id
            )
        fired.append(result)
    return fired
