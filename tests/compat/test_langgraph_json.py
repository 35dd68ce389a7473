"""``langgraph.json`` keys applied, in both modes: ``http.app`` (the user's routes served first, their
middleware and lifespan, no graphrun auth on them), ``http.disable_*``, ``http.configurable_headers``,
``checkpointer.ttl`` and the ``webhooks.url`` policy. The server runs with API keys on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import as_dict
from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "http.langgraph.json"
KEY = "k-graphrun-json-test"
SERVER_ENV = {"GRAPHRUN_API_KEYS": f"alice={KEY}", "GRAPHRUN_LOG_LEVEL": "INFO"}  # INFO: the request log


@pytest.fixture
async def alice(target: Any) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=target.url, api_key=KEY, timeout=60.0) as c:
        yield c


async def test_the_users_routes_are_served_first_without_graphrun_auth(http: httpx.AsyncClient) -> None:
    hello = await http.get("/custom/hello")

    assert hello.status_code == 200
    assert hello.json() == {"hello": "world", "lifespan": ["up"]}  # their lifespan ran
    assert hello.headers["x-custom-middleware"] == "seen"
    info = await http.get("/info")
    assert info.json() == {"custom": True}  # theirs shadows graphrun's, as on the official server


async def test_graphrun_routes_keep_their_auth_and_get_the_users_middleware(http: httpx.AsyncClient) -> None:
    refused = await http.post("/threads", json={})
    allowed = await http.post("/threads", json={}, headers={"x-api-key": KEY})

    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert allowed.headers["x-custom-middleware"] == "seen"


async def test_disabled_routes_are_gone(http: httpx.AsyncClient) -> None:
    auth = {"x-api-key": KEY}

    assert (await http.get("/store/items", params={"key": "k"}, headers=auth)).status_code == 404
    assert (await http.post("/store/namespaces", json={}, headers=auth)).status_code in (404, 405)
    assert (await http.post("/threads/count", json={}, headers=auth)).status_code == 200
    # http.disable_a2a: no agent cards, no A2A endpoint.
    assistant = (await http.post("/assistants/search", json={}, headers=auth)).json()[0]["assistant_id"]
    card = await http.get("/.well-known/agent-card.json", params={"assistant_id": assistant}, headers=auth)
    assert card.status_code == 404
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
    assert (await http.post(f"/a2a/{assistant}", json=rpc, headers=auth)).status_code in (404, 405)


async def test_runs_get_the_included_headers_in_their_configurable(alice: LangGraphClient) -> None:
    sent = {"x-user-id": "u1", "x-user-secret": "s", "x-other": "o"}

    result = as_dict(await alice.runs.wait(None, "headers", input={}, headers=sent))

    assert result["headers"] == {"x-user-id": "u1"}


async def test_checkpointer_ttl_prunes_idle_threads_to_their_latest_state(alice: LangGraphClient) -> None:
    thread_id = (await alice.threads.create())["thread_id"]
    for _ in range(2):
        await alice.runs.wait(thread_id, "headers", input={})

    await eventually(
        lambda: alice.threads.get_history(thread_id, limit=100),
        lambda history: len(history) == 1,
        what="the thread pruned by checkpointer.ttl (keep_latest)",
    )

    assert as_dict((await alice.threads.get_state(thread_id))["values"])["turns"] == 2


async def test_a_webhook_outside_the_url_policy_is_refused_and_no_run_is_written(
    alice: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = (await alice.threads.create())["thread_id"]
    auth = {"x-api-key": KEY}
    for webhook, reason in (
        ("http://hooks.example.com/x", "https"),
        ("https://evil.example/x", "not allowed"),
    ):
        response = await http.post(
            f"/threads/{thread_id}/runs",
            json={"assistant_id": "headers", "input": {}, "webhook": webhook},
            headers=auth,
        )
        assert response.status_code == 422, response.text
        assert reason in response.json()["detail"]
    assert await alice.runs.list(thread_id) == []
    # (An allowed URL is checked in tests/unit/test_http_policies.py: a run here would post to the network.)


async def test_the_logging_headers_go_in_the_request_log_and_credentials_never(
    target: Any, http: httpx.AsyncClient
) -> None:
    marker = f"probe-{uuid.uuid4().hex}"
    headers = {
        "x-api-key": KEY,
        "x-trace-origin": marker,
        "x-trace-secret": "s3cret-value",
        "x-other": marker,
    }
    assert (await http.post("/threads/count", json={}, headers=headers)).status_code == 200

    def logged() -> list[dict[str, Any]]:
        lines = [line for line in target.logs().splitlines() if marker in line and line.startswith("{")]
        return [orjson.loads(line) for line in lines]

    [entry] = await eventually(lambda: _value(logged()), bool, what="the request's log line")
    assert entry["event"] == "http_request"
    assert entry["headers"] == {"x-trace-origin": marker}, "only the included headers; no key, no secret"


async def _value(value: Any) -> Any:
    return value
