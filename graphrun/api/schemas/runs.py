"""Request bodies for runs and crons (a cron is a schedule of runs: its body is a run's fields and the
schedule's), and the cancel parameters."""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from graphrun.api.schemas.base import (
    MAX_DELAY_S,
    MAX_OFFSET,
    MAX_URL_LENGTH,
    Body,
    Config,
)
from graphrun.api.schemas.resources import Checkpoint, CommandBody
from graphrun.types import (
    STREAM_MODES,
    CancelAction,
    Durability,
    IfNotExists,
    Json,
    MultitaskStrategy,
    OnCompletion,
    OnDisconnect,
)

UNSUPPORTED_RUN_FIELDS = {
    "feedback_keys": "LangSmith feedback",
    "langsmith_tracer": "LangSmith tracing options",
}


class _RunFields(Body):
    """What a run request and a cron's schedule of runs share."""

    input: Any = None
    config: Config = Field(default_factory=dict)
    context: Json = Field(default_factory=dict)
    metadata: Json = Field(default_factory=dict)
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    checkpoint_during: bool | None = None
    durability: Durability | None = None
    webhook: str | None = Field(None, max_length=MAX_URL_LENGTH)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, what in UNSUPPORTED_RUN_FIELDS.items():
                if data.get(name) is not None:
                    raise ValueError(f"{name} ({what}) is not supported by graphrun yet")
        return data

    @field_validator("stream_mode")
    @classmethod
    def _known_modes(cls, value: str | list[str]) -> str | list[str]:
        for mode in [value] if isinstance(value, str) else value:
            if mode not in STREAM_MODES:
                raise ValueError(
                    f"unknown stream_mode {mode!r}; expected one of {', '.join(sorted(STREAM_MODES))}"
                )
        return value

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            url = urllib.parse.urlsplit(value)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"webhook must be an absolute http(s) URL, got {value!r}")
        return value

    @property
    def stream_modes(self) -> list[str]:
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)


class RunCreate(_RunFields):
    assistant_id: str
    command: CommandBody | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: IfNotExists = "reject"
    on_disconnect: OnDisconnect = "continue"
    on_completion: OnCompletion = "delete"
    after_seconds: float | None = Field(None, ge=0, le=MAX_DELAY_S)
    strict_resume: bool = False


_CRON_RUN_FIELDS = frozenset(_RunFields.model_fields)


def _storable_time(value: datetime | None) -> datetime | None:
    """A time both stores keep and read back: between the years 1970 and 9998 (a zone moves it a day)."""
    if value is not None and not (1970 <= value.year <= 9998):
        raise ValueError(f"must be between the years 1970 and 9998, got {value.isoformat()}")
    return value


StorableTime = Annotated[datetime | None, AfterValidator(_storable_time)]


class ThreadCronCreate(_RunFields):
    """A schedule of runs on one thread (``POST /threads/{id}/runs/crons``)."""

    assistant_id: str
    schedule: str = Field(max_length=256)
    timezone: str | None = Field(None, max_length=64)
    end_time: StorableTime = None
    enabled: bool = True
    multitask_strategy: MultitaskStrategy = "enqueue"

    def run_create(self, **extra: Any) -> RunCreate:
        """The run each tick writes, as a run request (validated as one when the cron is made)."""
        fields = self.model_dump(include=set(_CRON_RUN_FIELDS | {"assistant_id", "multitask_strategy"}))
        return RunCreate.model_validate({**fields, **extra})

    def payload(self) -> Json:
        """The request as the client gave it: the cron's ``payload``."""
        return self.model_dump(mode="json", exclude_unset=True)


class CronCreate(ThreadCronCreate):
    """A stateless schedule (``POST /runs/crons``): each tick's run has a new thread, deleted when the
    run ends unless ``on_run_completed`` is ``keep``."""

    on_run_completed: Literal["delete", "keep"] = "delete"


class CronPatch(_RunFields):
    schedule: str | None = Field(None, max_length=256)
    timezone: str | None = Field(None, max_length=64)
    end_time: StorableTime = None  # null clears it; absent leaves it
    enabled: bool | None = None
    on_run_completed: Literal["delete", "keep"] | None = None

    def run_changes(self) -> Json:
        """The run fields the patch sets, as they go over the cron's payload."""
        return self.model_dump(mode="json", include=set(_CRON_RUN_FIELDS & self.model_fields_set))


CronSortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"
]


class CronSearch(Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: Json = Field(default_factory=dict)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: CronSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class CronCount(Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: Json = Field(default_factory=dict)


class RunsCancel(Body):
    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None
    assistant_id: str | None = None


class CancelParams(BaseModel):
    wait: bool = False
    action: str = "interrupt"

    @property
    def cancel_action(self) -> CancelAction:
        return cancel_action(self.action)


def cancel_action(value: str) -> CancelAction:
    """As the official server: ``rollback`` rolls back; any other value (``cancel``, ``interrupt``, a
    value a newer client sends) interrupts."""
    return "rollback" if value == "rollback" else "interrupt"
