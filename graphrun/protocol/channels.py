"""What one connection of the thread-stream protocol subscribes to: the channels it may name, and the
``Filter`` of channels and namespace prefixes an event must pass to reach it."""

from __future__ import annotations

from dataclasses import dataclass

from graphrun.types import Json

# The channels a subscription may name, besides ``custom:<name>``.
CHANNELS = frozenset(
    {"values", "updates", "checkpoints", "messages", "tools", "custom", "lifecycle", "input", "tasks"}
)
# Lifecycle statuses that end a namespace (the root's ends the run).
TERMINAL = frozenset({"completed", "failed", "interrupted"})


def supported_channel(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return value in CHANNELS or (value.startswith("custom:") and len(value) > len("custom:"))


@dataclass(frozen=True)
class Filter:
    """What one stream (one connection) receives: channels, optionally namespace prefixes and how deep
    below them."""

    channels: frozenset[str]
    namespaces: tuple[tuple[str, ...], ...] | None = None
    depth: int | None = None

    def matches(self, event: Json) -> bool:
        method = event["method"]
        channel = "input" if method == "input.requested" else method
        params = event["params"]
        if channel == "custom":
            data = params.get("data")
            name = data.get("name") if isinstance(data, dict) else None
            if "custom" not in self.channels and (name is None or f"custom:{name}" not in self.channels):
                return False
        elif channel not in self.channels:
            return False
        if not self.namespaces:
            return True
        namespace = params.get("namespace") or []
        return any(
            _is_prefix(namespace, prefix)
            and (self.depth is None or len(namespace) - len(prefix) <= self.depth)
            for prefix in self.namespaces
        )


def _is_prefix(namespace: list[str], prefix: tuple[str, ...]) -> bool:
    """``prefix`` starts ``namespace``; a prefix segment without ``:`` also matches the segment's name
    before its ``:<task id>`` suffix."""
    if len(prefix) > len(namespace):
        return False
    for segment, candidate in zip(prefix, namespace, strict=False):
        if candidate != segment and (":" in segment or candidate.split(":")[0] != segment):
            return False
    return True
