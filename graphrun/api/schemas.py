"""Request bodies of the LangGraph Server API, as ``langgraph-sdk`` 0.4 sends them, and response shapes.

Every body refuses fields it does not know (``extra="forbid"``): a field the server would not honour is
an error the client sees, never silently dropped.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from graphrun import errors
from graphrun.models import Assistant, Cron, Thread
from graphrun.types import (
    STREAM_MODES,
    CancelAction,
    Durability,
    IfNotExists,
    Json,
    MultitaskStrategy,
    OnCompletion,
    OnDisconnect,
    ThreadStatus,
)

SortOrder = Literal["asc", "desc"]

# Upper bounds that keep numbers inside what SQLite and timedelta take (a 500 otherwise).
MAX_OFFSET = 2**62
MAX_DELAY_S = 366 * 24 * 3600.0
MAX_TTL_MINUTES = 10 * 366 * 24 * 60.0
MAX_URL_LENGTH = 4096


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        """No string may hold NUL or a lone surrogate: PostgreSQL cannot store them, and a value one mode
        keeps and the other refuses would break the modes' one contract. Refused in both, with the path."""
        bad = _unstorable(data, ())
        if bad is not None:
            where = ".".join(map(str, bad)) or "body"
            raise ValueError(f"{where}: text may not contain NUL (\\u0000) or unpaired surrogates")
        return data


def _unstorable(value: Any, path: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The path of the first string (key or value) that cannot be stored, or None."""
    if isinstance(value, str):
        return None if _storable(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _storable(key):
                return (*path, key.encode("utf-8", "backslashreplace").decode())
            found = _unstorable(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, (*path, index))
            if found is not None:
                return found
    return None


def _storable(text: str) -> bool:
    if text.isascii():
        return "\x00" not in text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


class _ConfigShape(BaseModel):
    """The keys of a LangGraph ``RunnableConfig`` a client may send, with their types; others pass."""

    model_config = ConfigDict(extra="allow")
    configurable: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    recursion_limit: int | None = Field(None, ge=1)
    max_concurrency: int | None = Field(None, ge=1)
    run_name: str | None = None


def _valid_config(value: Json) -> Json:
    _ConfigShape.model_validate(value)
    return value


Config = Annotated[Json, AfterValidator(_valid_config)]


class AssistantCreate(Body):
    graph_id: str
    assistant_id: str | None = None
    config: Config = Field(default_factory=dict)
    context: Json = Field(default_factory=dict)
    metadata: Json = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(Body):
    graph_id: str | None = None
    config: Config | None = None
    context: Json | None = None
    metadata: Json | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(Body):
    metadata: Json = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class AssistantCount(Body):
    metadata: Json = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None


class AssistantVersionsSearch(Body):
    metadata: Json = Field(default_factory=dict)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class AssistantLatest(Body):
    version: int = Field(ge=1)


class CommandBody(Body):
    resume: Any = None
    goto: Any = None
    update: Any = None


PruneStrategy = Literal["delete", "keep_latest"]


class ThreadTTL(Body):
    """A thread's time to live, as the SDK sends it: when not updated for ``ttl`` minutes the thread is
    deleted (``delete``) or pruned to its latest checkpoints (``keep_latest``)."""

    ttl: float = Field(gt=0, le=MAX_TTL_MINUTES)
    strategy: PruneStrategy = "delete"


class _WithTTL(Body):
    ttl: ThreadTTL | None = None

    @property
    def ttl_minutes(self) -> float | None:
        return self.ttl.ttl if self.ttl else None

    @property
    def ttl_strategy(self) -> PruneStrategy | None:
        return self.ttl.strategy if self.ttl else None


class SuperstepUpdate(Body):
    """One update of a superstep: ``values`` (or a ``command``) written as if ``as_node`` returned them."""

    values: Json | list[Json] | None = None
    command: CommandBody | None = None
    as_node: str


class Superstep(Body):
    updates: list[SuperstepUpdate] = Field(min_length=1)


class ThreadCreate(_WithTTL):
    thread_id: str | None = None
    metadata: Json = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Superstep] | None = None


class ThreadPatch(_WithTTL):
    metadata: Json = Field(default_factory=dict)


class ThreadPrune(Body):
    thread_ids: list[str] = Field(max_length=10_000)
    strategy: PruneStrategy = "delete"


class ThreadSearch(Body):
    metadata: Json = Field(default_factory=dict)
    values: Json = Field(default_factory=dict)
    ids: list[str] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None
    # Sent by some clients; the official server takes it and orders as it would without it (sort_by
    # and sort_order decide), so it is accepted, whatever its value, and not applied.
    order_by: Any = None


class ThreadCount(Body):
    metadata: Json = Field(default_factory=dict)
    values: Json = Field(default_factory=dict)
    status: ThreadStatus | None = None


class _CheckpointFields(Body):
    checkpoint_id: str | None = None
    checkpoint_ns: str | None = None
    thread_id: str | None = None
    checkpoint_map: Json | None = None


class Checkpoint(_CheckpointFields):
    """A checkpoint as the Python SDK sends it, or as a LangGraph config (``{"configurable": {…}}``, as
    the JS SDK sends it). Unknown keys are refused: a typo must not silently mean "the head"."""

    configurable: _CheckpointFields | None = None

    def fields(self) -> Json:
        """``checkpoint_id``/``checkpoint_ns`` (and friends) from either form."""
        found = self.model_dump(exclude_none=True, exclude={"configurable"})
        if self.configurable is not None:
            found.update(self.configurable.model_dump(exclude_none=True))
        return found


class ThreadStateUpdate(Body):
    values: Any = None
    as_node: str | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None


class ThreadStateAt(Body):
    checkpoint: Checkpoint
    subgraphs: bool = False


class ThreadHistory(Body):
    limit: int = Field(10, ge=1, le=1000)
    before: str | Checkpoint | None = None
    metadata: Json | None = None
    checkpoint: Checkpoint | None = None
    select: list[str] | None = None


# Fields the official API has that graphrun does not honour: refused by name, never dropped. Both need a
# LangSmith account, which a self-hosted server does not assume.
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


class StoreItemPut(Body):
    namespace: list[str]
    key: str
    value: Json
    index: Literal[False] | list[str] | None = None
    ttl: float | None = Field(None, ge=0, le=MAX_TTL_MINUTES)


class StoreItemDelete(Body):
    namespace: list[str]
    key: str


class StoreSearch(Body):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: Json | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    query: str | None = None
    refresh_ttl: bool | None = None

    @field_validator("filter")
    @classmethod
    def _comparable_numbers(cls, value: Json | None) -> Json | None:
        """The stores encode a filter with orjson, which takes integers of at most 64 bits (a 500 before)."""
        bad = _huge_int(value, ())
        if bad is not None:
            raise ValueError(f"filter.{'.'.join(map(str, bad))}: integers must fit in 64 bits")
        return value


def _huge_int(value: Any, path: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The path of the first integer outside what orjson encodes (-2**63 to 2**64 - 1), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if -(2**63) <= value < 2**64 else path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _huge_int(item, (*path, key))
        if found is not None:
            return found
    return None


class StoreNamespaces(Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


# ---------------------------------------------------------------- responses


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
