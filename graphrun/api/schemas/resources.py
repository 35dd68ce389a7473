"""Request bodies for assistants, threads (their state, history and TTL) and the store."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from graphrun.api.schemas.base import (
    MAX_OFFSET,
    MAX_TTL_MINUTES,
    Body,
    Config,
    SortOrder,
)
from graphrun.types import (
    Json,
    ThreadStatus,
)


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
