"""The ``chat`` graph of the production tests (graphs.py): its input and what a finished thread holds."""

from __future__ import annotations

from typing import Any


def chat_input(text: str, steps: int, delay: float) -> dict[str, Any]:
    """Input of ``chat``: a human message, answered by ``steps`` AI messages ``delay`` seconds apart."""
    return {"messages": [{"role": "user", "content": text}], "steps": steps, "delay": delay}


def step_messages(values: object) -> list[dict[str, object]]:
    """The AI messages of a ``chat`` thread's state."""
    assert isinstance(values, dict), f"expected the thread's values, got {values!r}"
    messages = values.get("messages", [])
    assert isinstance(messages, list)
    return [m for m in messages if isinstance(m, dict) and m.get("type") == "ai"]


def check_chat_messages(values: object, text: str, steps: int) -> list[int]:
    """A finished ``chat`` thread holds its human message and each step's message exactly once, in order,
    every message with an id of its own. Returns the pid that executed each step."""
    assert isinstance(values, dict), f"expected the thread's values, got {values!r}"
    messages = values["messages"]
    assert [(m["type"], m["content"]) for m in messages] == [("human", text)] + [
        ("ai", f"step {i}") for i in range(steps)
    ], f"messages of a thread that ran {steps} steps"
    ids = [m["id"] for m in messages]
    assert len(set(ids)) == len(ids), f"duplicate message ids: {ids}"
    return [int(m["response_metadata"]["pid"]) for m in messages[1:]]
