"""graphrun: a production runtime for LangGraph agents that speaks the LangGraph Server API."""

from __future__ import annotations

__version__ = "0.1.0"
