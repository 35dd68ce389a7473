"""Assistants in the SQL control store: created, versioned (every change is a new version; one is
current), searched, deleted; and the system assistants, one per graph."""

from __future__ import annotations

from typing import Any

from graphrun import errors
from graphrun.models import Assistant
from graphrun.stores import _rows
from graphrun.stores._sql.core import Db, SqlBase, dump, paging, timestamp
from graphrun.stores.base import Page
from graphrun.types import Json

_ASSISTANT_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")


class Assistants(SqlBase):
    """The assistant methods of ``ControlStore``."""

    def _assistant_in(self, db: Db, assistant_id: str) -> Assistant:
        return _assistant_found(self._one("get_assistant", {"assistant_id": assistant_id}, db), assistant_id)

    async def ensure_system_assistant(
        self, assistant_id: str, graph_id: str, description: str | None
    ) -> None:
        def tx(db: Db) -> None:
            if self._one("get_assistant", {"assistant_id": assistant_id}, db) is None:
                self._insert_assistant(
                    db, assistant_id, graph_id, {}, {}, {"created_by": "system"}, graph_id, description
                )

        return await self._write(tx)

    def _insert_assistant(
        self,
        db: Db,
        assistant_id: str,
        graph_id: str,
        config: Json,
        context: Json,
        metadata: Json,
        name: str,
        description: str | None,
    ) -> None:
        params = {
            "assistant_id": assistant_id,
            "graph_id": graph_id,
            "config": dump(config),
            "context": dump(context),
            "metadata": dump(metadata),
            "name": name,
            "description": description,
            "now": timestamp(),
        }
        db.execute(self._q["insert_assistant"], params)
        db.execute(self._q["insert_assistant_version"], {**params, "version": 1})

    async def create_assistant(self, assistant: Assistant, if_exists: str) -> Assistant:
        def tx(db: Db) -> Assistant:
            existing = self._one("get_assistant", {"assistant_id": assistant.assistant_id}, db)
            if existing is not None:
                if if_exists == "do_nothing":
                    return _rows.assistant(existing)
                raise errors.AlreadyExists(f"Assistant {assistant.assistant_id} already exists")
            a = assistant
            self._insert_assistant(
                db, a.assistant_id, a.graph_id, a.config, a.context, a.metadata, a.name, a.description
            )
            return _rows.assistant(self._one("get_assistant", {"assistant_id": a.assistant_id}, db))

        return await self._write(tx)

    async def get_assistant(self, assistant_id: str) -> Assistant:
        row = await self._read_one("get_assistant", {"assistant_id": assistant_id})
        return _assistant_found(row, assistant_id)

    async def update_assistant(self, assistant_id: str, changes: Json) -> Assistant:
        """A new version from the current one with ``changes`` applied; it becomes the current version."""

        def tx(db: Db) -> Assistant:
            current = self._assistant_in(db, assistant_id)
            fields: dict[str, Any] = {k: getattr(current, k) for k in _ASSISTANT_FIELDS}
            fields.update({k: v for k, v in changes.items() if k in _ASSISTANT_FIELDS and v is not None})
            fields["metadata"] = {
                **current.metadata,
                **changes.get("metadata", {}),
            }  # merged, as the SDK says
            version = (self._one("max_assistant_version", {"assistant_id": assistant_id}, db))["version"] + 1
            params = {
                **fields,
                "config": dump(fields["config"]),
                "context": dump(fields["context"]),
                "metadata": dump(fields["metadata"]),
                "assistant_id": assistant_id,
                "version": version,
                "now": timestamp(),
            }
            db.execute(self._q["insert_assistant_version"], params)
            db.execute(self._q["set_assistant_current"], params)
            return _rows.assistant(self._one("get_assistant", {"assistant_id": assistant_id}, db))

        return await self._write(tx)

    async def delete_assistant(self, assistant_id: str) -> None:
        def tx(db: Db) -> None:
            cur = db.execute(self._q["delete_assistant"], {"assistant_id": assistant_id})
            if cur.rowcount == 0:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")

        return await self._write(tx)

    async def search_assistants(
        self,
        graph_id: str | None,
        metadata: Json,
        name: str | None,
        page: Page,
        *,
        scope: list[Json] | None = None,
    ) -> list[Assistant]:
        params = {
            "graph_id": graph_id,
            "metadata": dump(metadata),
            "scope": dump(scope),
            "name": name,
            **paging(page, "created_at"),
        }
        return [_rows.assistant(r) for r in await self._read_all("search_assistants", params)]

    async def count_assistants(
        self, graph_id: str | None, metadata: Json, name: str | None, *, scope: list[Json] | None = None
    ) -> int:
        params = {"graph_id": graph_id, "metadata": dump(metadata), "name": name, "scope": dump(scope)}
        return int((await self._read_one("count_assistants", params))["n"])

    async def list_assistant_versions(self, assistant_id: str, metadata: Json, page: Page) -> list[Assistant]:
        await self.get_assistant(assistant_id)
        params = {"assistant_id": assistant_id, "metadata": dump(metadata), "limit": page.limit}
        params["offset"] = page.offset
        return [_rows.assistant(r) for r in await self._read_all("list_assistant_versions", params)]

    async def set_assistant_latest(self, assistant_id: str, version: int) -> Assistant:
        def tx(db: Db) -> Assistant:
            row = self._one("get_assistant_version", {"assistant_id": assistant_id, "version": version}, db)
            if row is None:
                raise errors.AssistantNotFound(f"Assistant {assistant_id} has no version {version}")
            chosen = _rows.assistant(row)
            params: dict[str, Any] = {
                k: getattr(chosen, k) for k in (*_ASSISTANT_FIELDS, "assistant_id", "version")
            }
            for key in ("config", "context", "metadata"):
                params[key] = dump(params[key])
            db.execute(self._q["set_assistant_current"], {**params, "now": timestamp()})
            return _rows.assistant(self._one("get_assistant", {"assistant_id": assistant_id}, db))

        return await self._write(tx)


def _assistant_found(row: Any, assistant_id: str) -> Assistant:
    if row is None:
        raise errors.AssistantNotFound(f"Assistant {assistant_id} not found")
    return _rows.assistant(row)
