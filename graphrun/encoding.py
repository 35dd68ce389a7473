"""JSON for the wire and the control store.

Graph state holds LangChain messages, pydantic models, dataclasses (``Interrupt``, ``Send``) and other
objects that ``json`` cannot write. They are written the way the official server writes them: pydantic
models by ``model_dump()``, dataclasses field by field, so clients see ``{"type": "human", "content": …}``.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Set
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    if isinstance(obj, type):
        # e.g. an Interrupt's response_schema given as a pydantic class
        schema = getattr(obj, "model_json_schema", None)
        return schema() if callable(schema) else obj.__name__
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    if hasattr(obj, "model_dump") and callable(obj.model_dump):
        return obj.model_dump()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Set):
        return list(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return obj._asdict()
    if isinstance(obj, (uuid.UUID, Decimal)):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    # Unknown objects become their repr rather than failing a whole run's output.
    return repr(obj)


def dumps(obj: Any) -> bytes:
    """Serialize to JSON bytes; never raises for an unusual object inside graph state."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # orjson refuses some values before `default` sees them (ints beyond 64 bits, tuple keys):
        # make them plain first, on this rare path only.
        return orjson.dumps(_plain(obj), default=_default, option=_OPTIONS)


def _plain(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, float)):
        return obj
    if isinstance(obj, int):
        return obj if -(2**63) <= obj < 2**64 else str(obj)
    if isinstance(obj, dict):
        return {k if isinstance(k, (str, int, float, bool)) else str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    try:
        converted = _default(obj)
    except Exception:
        return repr(obj)
    return converted if converted is obj or isinstance(converted, str) else _plain(converted)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode("utf-8")


def loads(data: bytes | str | None) -> Any:
    return None if data is None else orjson.loads(data)


def jsonable(obj: Any) -> Any:
    """A plain-JSON copy of ``obj`` (dicts, lists, str, numbers, bools, None)."""
    return orjson.loads(dumps(obj))
