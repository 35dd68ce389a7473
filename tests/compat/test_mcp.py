"""``/mcp`` through the official ``mcp`` Python client (Streamable HTTP), in both modes, with API keys
on: the assistants a caller may see are its tools; calling one runs the assistant statelessly; another
owner's assistant is neither listed nor callable; a failing graph answers a tool error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from langgraph_sdk import get_client
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "mcp.langgraph.json"
ALICE, BOB = "k-mcp-alice-0123456789", "k-mcp-bob-0123456789"
SERVER_ENV = {"GRAPHRUN_API_KEYS": f"alice={ALICE},bob={BOB}"}


@contextlib.asynccontextmanager
async def session(url: str, key: str) -> AsyncIterator[ClientSession]:
    """In the test's own task: the client's task groups must be entered and left in one task."""
    async with (
        httpx2.AsyncClient(headers={"x-api-key": key}, timeout=60.0) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _text(result: Any) -> str:
    return "".join(part.text for part in result.content if getattr(part, "type", None) == "text")


async def test_the_graphs_are_tools_with_their_input_schema(target: Any) -> None:
    async with session(target.url, ALICE) as alice:
        tools = {t.name: t for t in (await alice.list_tools()).tools}

    assert {"adder", "exploder"} <= set(tools)
    assert "opaque" not in tools  # no input schema can be derived: left out, as on the official server
    adder = tools["adder"]
    assert adder.input_schema["type"] == "object"
    assert set(adder.input_schema["properties"]) == {"a", "b", "total"}
    assert adder.description


async def test_calling_a_tool_runs_the_assistant(target: Any) -> None:
    async with session(target.url, ALICE) as alice:
        result = await alice.call_tool("adder", {"a": 2, "b": 3})

    assert not result.is_error
    assert result.structured_content == {"a": 2, "b": 3, "total": 5}
    assert '"total":5' in _text(result).replace(" ", "")


async def test_a_failing_graph_is_a_tool_error(target: Any) -> None:
    async with session(target.url, ALICE) as alice:
        result = await alice.call_tool("exploder", {})

    assert result.is_error
    assert "the tool broke" in _text(result)


async def test_an_unknown_tool_is_a_protocol_error(target: Any) -> None:
    async with session(target.url, ALICE) as alice:
        with pytest.raises(MCPError, match="Unknown tool"):
            await alice.call_tool("no_such_tool", {})


async def test_another_owners_assistant_is_not_a_tool(target: Any) -> None:
    async with get_client(url=target.url, api_key=ALICE) as sdk:
        await sdk.assistants.create("adder", name="alice's adder")

    async with session(target.url, ALICE) as alice:
        alice_tools = {t.name for t in (await alice.list_tools()).tools}
    async with session(target.url, BOB) as bob:
        bob_tools = {t.name for t in (await bob.list_tools()).tools}
        with pytest.raises(MCPError, match="Unknown tool"):
            await bob.call_tool("alice_s_adder", {})

    assert "alice_s_adder" in alice_tools
    assert "alice_s_adder" not in bob_tools
    assert "adder" in bob_tools  # a graph's own assistant is everyone's


async def test_the_endpoint_refuses_what_is_not_json_rpc(http: httpx.AsyncClient) -> None:
    auth = {"x-api-key": ALICE, "accept": "application/json"}

    assert (await http.post("/mcp", content=b"{", headers=auth)).status_code == 400
    assert (await http.post("/mcp", json={"id": 1, "method": "ping"}, headers=auth)).status_code == 400
    no_accept = await http.post(
        "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"x-api-key": ALICE}
    )
    assert no_accept.status_code == 400
    notification = await http.post(
        "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=auth
    )
    assert notification.status_code == 202
    unknown = await http.post(
        "/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "resources/list"}, headers=auth
    )
    assert unknown.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32601, "message": "Method not found: resources/list"},
    }
    assert (await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})).status_code == 401
    assert (await http.get("/mcp", headers=auth)).status_code == 405
    far = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "9" * 30}}
    assert (await http.post("/mcp", json=far, headers=auth)).json()["result"]["tools"] == []
