"""What every request body shares: ``Body`` (unknown fields refused, text both stores can keep), a
run's ``Config`` checked against ``RunnableConfig``'s keys, and the bounds that keep numbers inside what
SQLite and ``timedelta`` take."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from graphrun.types import (
    Json,
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
