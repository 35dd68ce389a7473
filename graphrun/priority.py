"""A thread's priority settings, from the ``langgraph_sdk.Priority`` that ``priority.path`` names: for
the runs the API creates and those a cron fires.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from langgraph_sdk import Priority, PriorityContext
from langgraph_sdk.auth.types import BaseUser

from graphrun import errors
from graphrun.models import Assistant
from graphrun.stores.base import ControlStore, NewRun

log = structlog.get_logger("graphrun.priority")

PRIORITY_RANGE = range(-5, 6)
DEFAULT_FAIRNESS_GROUP = "default"
FAIRNESS_GROUP_MAX_CHARS = 256


@dataclass(frozen=True)
class Unauthenticated:
    """``ctx.user`` without auth (``identity`` empty, as upstream says), or for a cron's run (its
    ``user_id``)."""

    identity: str = ""
    display_name: str = ""
    is_authenticated: bool = False
    permissions: Sequence[str] = ()

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _USER_FIELDS

    def __iter__(self) -> Iterator[str]:
        return iter(_USER_FIELDS)


_USER_FIELDS = ("identity", "display_name", "is_authenticated", "permissions")


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
    priority: Priority | None,
    store: ControlStore,
    assistant: Assistant,
    new: NewRun,
    *,
    thread_given: bool,
    user: Any = None,
    permissions: Sequence[str] = (),
    cron_id: str | None = None,
) -> NewRun:
    """``new`` with the settings its thread gets, when a ``priority.path`` is configured and the thread
    has none yet; else ``new`` unchanged (the run then takes the thread's stored priority, or 0)."""
    handler = priority._assign_handler if priority is not None else None
    if handler is None:
        return new
    thread_metadata: dict[str, Any] = {}
    if thread_given:
        try:
            thread = await store.get_thread(new.thread_id)
        except errors.ThreadNotFound:
            thread = None  # the run creates it (or is refused for it by the store)
        if thread is not None and thread.priority is not None:
            return new
        thread_metadata = dict(thread.metadata) if thread is not None else {}
    as_user: BaseUser = user if user is not None else Unauthenticated()
    ctx = PriorityContext(
        user=as_user,
        permissions=list(permissions),
        thread_id=new.thread_id if thread_given else None,
        thread_metadata=thread_metadata,
        assistant_id=assistant.assistant_id,
        graph_id=assistant.graph_id,
        assistant_metadata=dict(assistant.metadata),
        run_metadata=dict(new.metadata),
        cron_id=cron_id,
    )
    try:
        settings, group = settings_of(await handler(ctx))
    except Exception as exc:
        log.error("priority_assign_failed", thread_id=new.thread_id, error=f"{type(exc).__name__}: {exc}")
        return new
    return dataclasses.replace(new, priority=settings, fairness_group=group)
