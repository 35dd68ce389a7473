"""The HTTP API (L5): validates requests, writes rows, streams events. It never executes a graph."""

from __future__ import annotations

from graphrun.api.app import create_app

__all__ = ["create_app"]
