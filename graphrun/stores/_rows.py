"""Turning stored rows into models, shared by the store adapters."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from graphrun import encoding
from graphrun.models import Assistant, Cron, Run, RunRequest, Thread

_REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(RunRequest))


def ts(value: datetime) -> str:
    """Times are stored as fixed-width UTC text so that they sort correctly as strings."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_ts(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _json(value: Any, default: Any = None) -> Any:
    if value is None:
        return default
    if isinstance(value, (str, bytes)):
        return encoding.loads(value)
    return value


def assistant(row: Mapping[str, Any]) -> Assistant:
    return Assistant(
        assistant_id=row["assistant_id"],
        graph_id=row["graph_id"],
        config=_json(row["config"], {}),
        context=_json(row["context"], {}),
        metadata=_json(row["metadata"], {}),
        name=row["name"],
        description=row["description"],
        version=row["version"],
        created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
        updated_at=parse_ts(row["updated_at"] if "updated_at" in row.keys() else row["created_at"]),  # type: ignore[arg-type]  # noqa: SIM118
    )


def thread(row: Mapping[str, Any]) -> Thread:
    return Thread(
        thread_id=row["thread_id"],
        created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
        updated_at=parse_ts(row["updated_at"]),  # type: ignore[arg-type]
        state_updated_at=parse_ts(row["state_updated_at"]),  # type: ignore[arg-type]
        metadata=_json(row["metadata"], {}),
        status=row["status"],
        values=_json(row["state_values"]),
        interrupts=_json(row["interrupts"], {}),
        config=_json(row["config"], {}),
        error=_json(row["error"]),
        ttl_minutes=row["ttl_minutes"],
        ttl_strategy=row["ttl_strategy"],
        priority=row["priority"],
        fairness_group=row["fairness_group"],
    )


def run(row: Mapping[str, Any]) -> Run:
    request = _json(row["request"], {})
    return Run(
        run_id=row["run_id"],
        thread_id=row["thread_id"],
        assistant_id=row["assistant_id"],
        graph_id=row["graph_id"],
        status=row["status"],
        metadata=_json(row["metadata"], {}),
        multitask_strategy=row["multitask_strategy"],
        request=RunRequest(**{k: v for k, v in request.items() if k in _REQUEST_FIELDS}),
        created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
        updated_at=parse_ts(row["updated_at"]),  # type: ignore[arg-type]
        attempt=row["attempt"],
        available_at=parse_ts(row["available_at"]),
        output=_json(row["output"]),
        error=_json(row["error"]),
        cancel_action=row["cancel_action"],
        cancel_reason=row["cancel_reason"],
    )


def request_json(request: RunRequest) -> str:
    return encoding.dumps_str(dataclasses.asdict(request))


def cron(row: Mapping[str, Any]) -> Cron:
    return Cron(
        cron_id=row["cron_id"],
        assistant_id=row["assistant_id"],
        thread_id=row["thread_id"],
        user_id=row["user_id"],
        schedule=row["schedule"],
        timezone=row["timezone"],
        end_time=parse_ts(row["end_time"]),
        enabled=bool(row["enabled"]),
        on_run_completed=row["on_run_completed"],
        next_run_date=parse_ts(row["next_run_date"]),
        payload=_json(row["payload"], {}),
        metadata=_json(row["metadata"], {}),
        template=_json(row["template"], {}),
        created_at=parse_ts(row["created_at"]),  # type: ignore[arg-type]
        updated_at=parse_ts(row["updated_at"]),  # type: ignore[arg-type]
    )
