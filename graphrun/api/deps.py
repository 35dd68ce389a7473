"""What the routes need, handed to ``create_app`` and reached through ``request.app.state``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from langgraph.store.base import BaseStore

from graphrun.graphs import GraphRegistry
from graphrun.settings import Settings
from graphrun.stores.base import ControlStore
from graphrun.streams import EventBus


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: ControlStore
    bus: EventBus
    graphs: GraphRegistry
    # Set when the process begins to shut down: waits answer 503 and streams end, before the server stops.
    draining: asyncio.Event = field(default_factory=asyncio.Event)

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
