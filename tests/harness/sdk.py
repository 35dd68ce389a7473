"""Reading what a server answered: SDK errors, SSE frames, JSON objects, system assistant ids."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID, uuid5

import httpx

# Namespace of the official server's system assistant ids (langgraph_api's NAMESPACE_GRAPH).
ASSISTANT_NAMESPACE = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def system_assistant_id(graph_id: str) -> str:
    return str(uuid5(ASSISTANT_NAMESPACE, graph_id))


def as_dict(value: object) -> dict[str, Any]:
    """Narrow an SDK result typed as ``list | dict`` (or ``Json``) to the JSON object it must be."""
    assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
    return cast(dict[str, Any], value)


def status_of(exc: httpx.HTTPStatusError) -> int:
    """HTTP status of an SDK error (the SDK raises subclasses of ``httpx.HTTPStatusError``)."""
    return exc.response.status_code


def body_text(exc: httpx.HTTPStatusError) -> str:
    """The response body of an SDK error, for asserting on the server's message."""
    response = exc.response
    if not response.is_stream_consumed:
        response.read()
    return response.text


def sse_events(lines: list[str]) -> list[tuple[str | None, str, str]]:
    """(id, event, raw data) of each complete SSE event in ``lines``, as an EventSource would parse them."""
    found: list[tuple[str | None, str, str]] = []
    event_id: str | None = None
    name, data = "", ""
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            found.append((event_id, name, data))
            event_id, name, data = None, "", ""
    return found
