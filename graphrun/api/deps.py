"""What the routes need, handed to ``create_app`` and reached through ``request.app.state``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from langgraph.store.base import BaseStore
from langgraph_sdk import Priority

from graphrun.errors import ConfigError
from graphrun.graphs import GraphRegistry
from graphrun.settings import Settings
from graphrun.stores.base import ControlStore
from graphrun.streams import EventBus
from graphrun.webhooks import UrlPolicy


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: ControlStore
    bus: EventBus
    graphs: GraphRegistry
    # Set when the process begins to shut down: waits answer 503 and streams end, before the server stops.
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    webhook_url: UrlPolicy | None = None  # webhooks.url of langgraph.json
    priority: Priority | None = None  # priority.path of langgraph.json

    @property
    def kv(self) -> BaseStore:
        """The long-term (cross-thread) store graphs use, served by ``/store``."""
        return self.graphs.persistence.store


async def services(request: Request) -> Services:
    """Async, so that FastAPI calls it on the event loop rather than in its thread pool."""
    svc: Any = request.app.state.services
    assert isinstance(svc, Services)
    return svc


Svc = Annotated[Services, Depends(services)]


@dataclass(frozen=True)
class HeaderPolicy:
    """``http.configurable_headers`` of langgraph.json: the request headers a run gets in its
    ``config.configurable``, as the official server picks them. Only names that match an ``includes``
    pattern and no ``excludes`` pattern; none without ``includes``; never credentials. Patterns are
    literal text and ``*``, matched against lower-case names.

    Written here rather than with ``fnmatch``: its ``?`` and ``[...]`` would read patterns the official
    server takes literally."""

    includes: tuple[re.Pattern[str], ...] = ()
    excludes: tuple[re.Pattern[str], ...] = ()

    NEVER = frozenset({"authorization", "x-api-key", "x-service-key", "x-tenant-id", "cookie"})

    @classmethod
    def of(cls, section: Any, key: str = "configurable_headers") -> HeaderPolicy | None:
        """The policy of ``http.<key>`` (``configurable_headers``, or ``logging_headers``: the request
        headers each request's log line carries)."""
        if not section:
            return None
        if not isinstance(section, Mapping):
            raise ConfigError(f"http.{key} must be an object with includes and excludes")
        unknown = sorted(set(section) - {"includes", "include", "excludes", "exclude"})
        if unknown:
            raise ConfigError(f"http.{key}: unknown key {unknown[0]!r} (known: includes, excludes)")

        def patterns(*keys: str) -> tuple[re.Pattern[str], ...]:
            found = [p for k in keys for p in (section.get(k) or [])]
            if not all(isinstance(p, str) for p in found):
                raise ConfigError(f"http.{key}.{keys[0]} must be a list of strings")
            return tuple(_pattern(p) for p in found)

        return cls(patterns("includes", "include"), patterns("excludes", "exclude"))

    def wanted(self, name: str) -> bool:
        name = name.lower()
        if name in self.NEVER or any(p.fullmatch(name) for p in self.excludes):
            return False
        return any(p.fullmatch(name) for p in self.includes)

    def pick(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k.lower(): v for k, v in headers.items() if self.wanted(k)}


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.lower().split("*")), re.DOTALL)
