"""Control-store adapters (L2): all control-store I/O goes through ``ControlStore``."""

from __future__ import annotations

from graphrun.stores.base import ControlStore, CreatedRun, NewRun, Page

__all__ = ["ControlStore", "CreatedRun", "NewRun", "Page"]
