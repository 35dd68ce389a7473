"""Named SQL queries, read from the ``.sql`` files beside this module.

A file holds queries separated by ``-- name: <query_name>`` lines; migrations are numbered files under
``<dialect>/migrations/``. Only the store modules run these.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def queries(dialect: str, file: str = "queries") -> dict[str, str]:
    """All named queries of a dialect's file (``sqlite``/``postgres``; ``queries`` for our own tables,
    ``saver`` for those of LangGraph's saver), keyed by name."""
    text = resources.files(__package__).joinpath(dialect, f"{file}.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    named = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}
    if len(named) != (len(parts) - 1) // 2:
        raise ValueError(f"duplicate query name in {dialect}/{file}.sql")
    return named


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in order."""
    folder = resources.files(__package__).joinpath(dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> list[str]:
    """The statements of a migration script: comment lines dropped, split on ``;`` at line ends, except
    inside a ``$$``-quoted body (a PostgreSQL function's)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    found: list[str] = []
    pending: list[str] = []
    for part in "\n".join(lines).split(";\n"):
        pending.append(part)
        joined = ";\n".join(pending)
        if joined.count("$$") % 2 == 0:  # not inside a body: the statement ends here
            found.append(joined)
            pending = []
    if pending:
        found.append(";\n".join(pending))
    parts = (s.strip().rstrip(";").strip() for s in found)
    return [p for p in parts if p]
