"""``http.mount_prefix``: the API under the prefix (the SDK given the prefixed URL, the WebSocket thread
stream and A2A too), ``/ok``, ``/metrics`` and the probes also at the root, nothing else there; both
modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "prefix.langgraph.json"
PREFIX = "/api/v1"


async def test_the_api_is_served_under_the_prefix(target: Any) -> None:
    async with get_client(url=f"{target.url}{PREFIX}", api_key=None, timeout=60.0) as client:
        thread = await client.threads.create()
        result = await client.runs.wait(thread["thread_id"], "sleepy", input={"seconds": 0})
        async with client.threads.stream(assistant_id="chats", transport="websocket") as stream:
            await stream.run.start(input={"messages": [{"role": "user", "content": "hi"}]})
            output = await stream.output
    assert isinstance(result, dict)
    assert result["seen"] == {"slept": 0}
    assert [b["text"] for b in output["messages"][1]["content"]] == ["hello there world"]

    async with httpx.AsyncClient(base_url=target.url, timeout=30) as http:
        assert (await http.get("/ok")).json()["ok"] is True
        assert (await http.get(f"{PREFIX}/ok")).json()["ok"] is True
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/ready")).status_code == 200
        assert (await http.post("/threads/search", json={})).status_code == 404
        assistant = (await http.post(f"{PREFIX}/assistants/search", json={"graph_id": "chats"})).json()[0]
        card = await http.get(
            f"{PREFIX}/.well-known/agent-card.json", params={"assistant_id": assistant["assistant_id"]}
        )
    assert card.json()["url"] == f"{target.url}{PREFIX}/a2a/{assistant['assistant_id']}"
