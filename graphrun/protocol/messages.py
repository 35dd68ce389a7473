"""State payloads as the thread-stream protocol carries them: the messages in ``values`` and ``updates``
turned into protocol-shaped messages and content blocks (``state_payload``), as the official server does."""

from __future__ import annotations

from typing import Any

from graphrun.types import Json

_MESSAGE_TYPES = frozenset({"human", "ai", "system", "tool", "function", "remove"})
_BLOCK_TYPES = frozenset(
    {
        "text",
        "reasoning",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_call_result",
        "image",
        "audio",
        "video",
        "file",
        "non_standard",
    }
)


def state_payload(value: Any) -> Any:
    """A ``values``/``updates`` payload with its messages in protocol shape (type, content blocks, ids,
    tool calls) and no ``__interrupt__``."""
    if isinstance(value, list):
        return [_message(v) if _is_message(v) else state_payload(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: Json = {}
    for key, entry in value.items():
        if key == "__interrupt__":
            continue
        if key == "messages" and isinstance(entry, list):
            out[key] = [_message(m) if _is_message(m) else m for m in entry]
        else:
            out[key] = state_payload(entry)
    return out


def _message_type(value: Any) -> Any:
    return {"assistant": "ai", "user": "human"}.get(value, value) if isinstance(value, str) else None


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and _message_type(value.get("type")) in _MESSAGE_TYPES


def _message(value: Json) -> Json:
    kind = _message_type(value.get("type"))
    message: Json = {"type": kind, "content": _content(value.get("content", ""))}
    for key in ("id", "name"):
        if isinstance(value.get(key), str):
            message[key] = value[key]
    if kind in ("ai", "human") and isinstance(value.get("example"), bool):
        message["example"] = value["example"]
    if isinstance(value.get("response_metadata"), dict) and value["response_metadata"]:
        message["response_metadata"] = value["response_metadata"]
    if kind == "tool":
        if isinstance(value.get("tool_call_id"), str):
            message["tool_call_id"] = value["tool_call_id"]
        if value.get("status") in ("success", "error"):
            message["status"] = value["status"]
        if "artifact" in value:
            message["artifact"] = value["artifact"]
    if kind == "ai":
        calls = [
            {
                "type": "tool_call",
                "name": c["name"],
                "args": c.get("args") or {},
                **({"id": c["id"]} if c.get("id") else {}),
            }
            for c in value.get("tool_calls") or []
            if isinstance(c, dict) and isinstance(c.get("name"), str)
        ]
        if calls:
            message["tool_calls"] = calls
        if value.get("invalid_tool_calls"):
            message["invalid_tool_calls"] = value["invalid_tool_calls"]
    return message


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    blocks: list[Any] = []
    for entry in content:
        if isinstance(entry, str):
            blocks.append({"type": "text", "text": entry})
        elif isinstance(entry, dict) and isinstance(entry.get("type"), str):
            blocks.append(_block(entry))
    return blocks or content


def _block(block: Json) -> Json:
    if block["type"] in _BLOCK_TYPES:
        return block
    if block["type"] == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            return {"type": "image", "url": url}
    return {"type": "non_standard", "value": dict(block)}
