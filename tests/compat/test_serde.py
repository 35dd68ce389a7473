"""``checkpointer.serde``: with ``pickle_fallback`` a state holding an object msgpack cannot write is
checkpointed (as a pickle) and the run goes on, in both modes. Without the key LangGraph's default
serializer refuses it (tests/unit/test_serde.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk.client import LangGraphClient

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "serde.langgraph.json"


async def test_a_state_needing_pickle_is_checkpointed_with_pickle_fallback(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    output = await client.runs.wait(thread["thread_id"], "plans", input={"text": "plan the plan"})
    assert output == {"text": "3 steps", "plan": None}
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success"]
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"] == {"text": "3 steps", "plan": None}
