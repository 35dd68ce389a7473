"""A thread's priority settings, from the ``langgraph_sdk.Priority`` that ``priority.path`` names.

As the official server documents it: the assign function is called at the first run on a thread that has
no settings, and what it returns is stored on the thread for every later run (``None``, or a missing key,
gives the defaults: priority 0, fairness group ``"default"``). Priorities run from -5 (claimed first) to 5
(claimed last). The fairness group is kept, unencrypted, and has no effect on order, as upstream.

A function that raises or returns something out of range does not stop the run: it is logged
(``priority_assign_failed``), the run gets priority 0 and the thread keeps no settings, so the next run
asks again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog
from langgraph_sdk import PriorityContext

from graphrun import errors
from graphrun.api.authz import Access, User
from graphrun.api.deps import Services
from graphrun.models import Assistant
from graphrun.stores.base import NewRun

log = structlog.get_logger("graphrun.priority")

PRIORITY_RANGE = range(-5, 6)
DEFAULT_FAIRNESS_GROUP = "default"
FAIRNESS_GROUP_MAX_CHARS = 256
_ANONYMOUS = User("", is_authenticated=False)


def settings_of(returned: Any) -> tuple[int, str]:
    """(priority, fairness group) from what the assign function returned; ``InvalidRequest`` saying why
    when it is not ``PrioritySettings``."""
    if returned is None:
        return 0, DEFAULT_FAIRNESS_GROUP
    if not isinstance(returned, dict):
        raise errors.InvalidRequest(f"must return a dict or None, not {type(returned).__name__}")
    unknown = sorted(set(returned) - {"priority", "fairness_group"})
    if unknown:
        raise errors.InvalidRequest(f"unknown key {unknown[0]!r} (known: priority, fairness_group)")
    priority = returned.get("priority")
    group = returned.get("fairness_group")
    if priority is None:
        priority = 0
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITY_RANGE:
        raise errors.InvalidRequest(f"priority must be an integer from -5 to 5, got {priority!r}")
    if group is not None and not isinstance(group, str):
        raise errors.InvalidRequest(f"fairness_group must be a string, got {type(group).__name__}")
    if group is not None and len(group) > FAIRNESS_GROUP_MAX_CHARS:
        raise errors.InvalidRequest(f"fairness_group is longer than {FAIRNESS_GROUP_MAX_CHARS} characters")
    return priority, group or DEFAULT_FAIRNESS_GROUP


async def assign(
    svc: Services, access: Access, assistant: Assistant, new: NewRun, *, thread_given: bool
) -> NewRun:
    """``new`` with the settings its thread gets, when a ``priority.path`` is configured and the thread
    has none yet; else ``new`` unchanged (the run then takes the thread's stored priority, or 0)."""
    handler = svc.priority._assign_handler if svc.priority is not None else None
    if handler is None:
        return new
    thread_metadata: dict[str, Any] = {}
    if thread_given:
        try:
            thread = await svc.store.get_thread(new.thread_id)
        except errors.ThreadNotFound:
            thread = None  # the run creates it (or is refused for it by the store)
        if thread is not None and thread.priority is not None:
            return new
        thread_metadata = dict(thread.metadata) if thread is not None else {}
    caller = access.caller
    ctx = PriorityContext(
        user=caller.user if caller is not None else _ANONYMOUS,
        permissions=list(caller.permissions) if caller is not None else [],
        thread_id=new.thread_id if thread_given else None,
        thread_metadata=thread_metadata,
        assistant_id=assistant.assistant_id,
        graph_id=assistant.graph_id,
        assistant_metadata=dict(assistant.metadata),
        run_metadata=dict(new.metadata),
        cron_id=None,
    )
    try:
        priority, group = settings_of(await handler(ctx))
    except Exception as exc:
        log.error("priority_assign_failed", thread_id=new.thread_id, error=f"{type(exc).__name__}: {exc}")
        return new
    return dataclasses.replace(new, priority=priority, fairness_group=group)
