"""Response shapes: assistants, threads and crons as the official server answers them, and ``select``
for the ``select`` field of the search bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from graphrun import errors
from graphrun.models import Assistant, Cron, Thread
from graphrun.types import (
    Json,
)


def assistant_json(a: Assistant) -> Json:
    return {
        "assistant_id": a.assistant_id,
        "graph_id": a.graph_id,
        "config": a.config,
        "context": a.context,
        "metadata": a.metadata,
        "name": a.name,
        "description": a.description,
        "version": a.version,
        "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
    }


def select(items: list[Json], fields: list[str] | None, known: tuple[str, ...]) -> list[Json]:
    """Keep only the ``select``-ed fields; an unknown one is refused even when nothing matched."""
    if not fields:
        return items
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise errors.InvalidRequest(f"select: unknown field {unknown[0]!r}; fields: {', '.join(known)}")
    return [{k: v for k, v in item.items() if k in fields} for item in items]


ASSISTANT_FIELDS = (
    "assistant_id",
    "graph_id",
    "config",
    "context",
    "metadata",
    "name",
    "description",
    "version",
    "created_at",
    "updated_at",
)

THREAD_FIELDS = (
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "status",
    "values",
    "interrupts",
    "config",
    "error",
)


def thread_json(t: Thread) -> Json:
    return {
        "thread_id": t.thread_id,
        "created_at": t.created_at.isoformat(),
        "updated_at": t.updated_at.isoformat(),
        "state_updated_at": t.state_updated_at.isoformat(),
        "metadata": t.metadata,
        "status": t.status,
        "values": t.values,
        "interrupts": t.interrupts,
        "config": t.config,
        "error": t.error,
    }


CRON_FIELDS = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "payload",
    "user_id",
    "next_run_date",
    "metadata",
    "enabled",
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def cron_json(c: Cron) -> Json:
    return {
        "cron_id": c.cron_id,
        "assistant_id": c.assistant_id,
        "thread_id": c.thread_id,
        "on_run_completed": c.on_run_completed,
        "end_time": _iso(c.end_time),
        "schedule": c.schedule,
        "timezone": c.timezone,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "payload": c.payload,
        "user_id": c.user_id,
        "next_run_date": _iso(c.next_run_date),
        "metadata": c.metadata,
        "enabled": c.enabled,
    }
