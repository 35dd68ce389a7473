"""JSON containment with the semantics of Postgres' ``jsonb @>``, for the SQLite adapter's filters.

SQLite has no containment operator, and its ``json_extract`` reads ``true`` as ``1``; the SQLite store
registers ``contains`` as the SQL function ``json_contains(document, filter)`` so that both adapters
filter metadata and values alike.
"""

from __future__ import annotations

from typing import Any

import orjson


def contains(document: Any, wanted: Any) -> bool:
    """Does ``document`` contain ``wanted``? Objects by key, recursively; arrays element-wise
    (each wanted element is contained in some element); scalars by type and value."""
    if isinstance(wanted, dict):
        return isinstance(document, dict) and all(
            key in document and contains(document[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        if not isinstance(document, list):
            return False
        return all(any(contains(item, w) for item in document) for w in wanted)
    if isinstance(wanted, bool) or isinstance(document, bool):
        return type(wanted) is type(document) and wanted == document
    if isinstance(wanted, (int, float)) and isinstance(document, (int, float)):
        return bool(wanted == document)
    return type(wanted) is type(document) and bool(wanted == document)


def sql_contains(document: str | bytes | None, wanted: str | bytes | None) -> int:
    """``json_contains`` for SQLite: an empty or absent filter matches everything."""
    if wanted is None:
        return 1
    filt = orjson.loads(wanted)
    if not filt:
        return 1
    return int(document is not None and contains(orjson.loads(document), filt))
