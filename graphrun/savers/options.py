"""What ``langgraph.json`` says of the savers beyond their kind: ``checkpointer.serde`` as the serializer
of the checkpointers graphrun opens itself, and ``store.ttl`` with a sweep interval always set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.store.base import TTLConfig

# How often expired store items are deleted when langgraph.json does not say (minutes, as TTLConfig).
default_sweep_interval_minutes = 1

# The checkpointers graphrun opens itself; a custom one (module:attr) brings its own serializer.
BUILT_IN = frozenset({"memory", "sqlite", "postgres", "redis", "mongodb"})


def serializer(serde: Mapping[str, Any]) -> JsonPlusSerializer:
    """``checkpointer.serde`` of langgraph.json, as the official server reads it: ``allowed_json_modules``
    (``true``, or module paths such as ``["my_agent", "state", "Plan"]``) may be rebuilt from JSON, and
    ``pickle_fallback`` (default true once the section is given) stores what msgpack cannot as a pickle
    and reads pickles back. Without the section, LangGraph's default serializer stays."""
    allowed = serde.get("allowed_json_modules")
    modules = allowed if allowed is True or allowed is None else [tuple(path) for path in allowed]
    return JsonPlusSerializer(
        pickle_fallback=serde.get("pickle_fallback", True), allowed_json_modules=modules
    )


def store_ttl(store_config: Mapping[str, Any] | None) -> TTLConfig:
    """The store's TTL settings from ``langgraph.json``'s ``store.ttl`` (validated by ``config``;
    minutes, as in the LangGraph CLI), with a sweep interval always set: items put with a ``ttl`` must
    expire even when langgraph.json sets no default (the SQL stores' reads do not skip expired items;
    only their sweepers remove them)."""
    ttl = dict((store_config or {}).get("ttl") or {})
    ttl.setdefault("sweep_interval_minutes", default_sweep_interval_minutes)
    return TTLConfig(**ttl)  # type: ignore[typeddict-item]
