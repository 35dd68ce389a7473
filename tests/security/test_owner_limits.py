"""The limits held per caller, as an attacker meets them (issue 32), in both modes: the rate limit counts
an API key's owner however the key is spelled; long waits (``/join``, ``/wait``, MCP ``tools/call``) count
toward the bound on open streams; ``/metrics`` answers no key guesses past the address's budget of
refused credentials; a JSON body nested too deep is a 400, on ``/mcp`` as on the REST routes.

Each test speaks as an owner of its own, so that one test's requests do not spend another's budget; the
test of refused credentials spends its address's budget, so it comes last."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.harness.sdk import system_assistant_id
from tests.harness.waiting import eventually

KEYS = {owner: f"{owner}-key-0123456789abcdef" for owner in ("alice", "carol", "dave", "erin")}
LIMIT = 20
SERVER_ENV = {
    "GRAPHRUN_API_KEYS": ",".join(f"{owner}={key}" for owner, key in KEYS.items()),
    "GRAPHRUN_RATE_LIMIT": f"{LIMIT}/minute",
    "GRAPHRUN_MAX_STREAMS_PER_OWNER": "2",
}
CONFIG = Path(__file__).resolve().parent / "langgraph.json"


def _http(target: Any, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=target.url, timeout=30.0, **kwargs)


async def test_a_key_however_spelled_is_one_budget(target: Any) -> None:
    key = KEYS["alice"]
    spellings: list[list[tuple[str, str]]] = [
        [("x-api-key", key)],
        [("authorization", f"Bearer {key}")],
        [("authorization", f"Bearer    {key}")],
        [("authorization", f"bearer \t{key}")],
        [("x-api-key", key), ("x-api-key", "a second key, which login does not read")],
        [("x-api-key", key), ("authorization", "Bearer something else")],
    ]
    async with _http(target) as http:
        codes = [
            (await http.post("/threads/count", json={}, headers=spellings[i % len(spellings)])).status_code
            for i in range(LIMIT + 2)
        ]
        refused = await http.post("/threads/count", json={}, headers=spellings[2])

    assert codes == [200] * LIMIT + [429, 429], "one owner, one budget, however its key is written"
    assert "too many requests from caller 'alice'" in refused.json()["detail"]


async def test_long_waits_count_toward_the_bound_on_open_streams(target: Any) -> None:
    """Two held waits fill carol's bound of 2: a third wait, a join, an MCP tool call and an A2A
    message are refused at once."""
    auth = {"x-api-key": KEYS["carol"]}
    wait = {"assistant_id": "sleepy", "input": {"seconds": 30}}
    async with _http(target, headers=auth) as http:
        threads = [(await http.post("/threads", json={})).json()["thread_id"] for _ in range(2)]
        held = [asyncio.create_task(http.post(f"/threads/{tid}/runs/wait", json=wait)) for tid in threads]
        try:

            async def busy() -> Any:
                return (await http.post("/threads/count", json={"status": "busy"})).json()

            await eventually(busy, lambda n: n == 2, interval_s=0.25, what="both waits held")
            run = (await http.post("/runs", json={**wait, "input": {"seconds": 0}})).json()
            answers = [
                await http.post("/runs/wait", json={**wait, "input": {"seconds": 0}}),
                await http.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}/join"),
                await http.post(
                    "/mcp",
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "tools/call",
                        "params": {"name": "adder", "arguments": {"a": 1}},
                    },
                    headers={"accept": "application/json"},
                ),
                await http.post(
                    f"/a2a/{system_assistant_id('sleepy')}",
                    json={
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "message/send",
                        "params": {
                            "message": {
                                "role": "user",
                                "messageId": "m1",
                                "parts": [{"kind": "text", "text": "hi"}],
                            }
                        },
                    },
                ),
            ]
        finally:
            for task in held:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)

    assert [a.status_code for a in answers] == [429, 429, 429, 429]
    for refused in answers:  # the bound's refusals, not the rate limit's
        assert "GRAPHRUN_MAX_STREAMS_PER_OWNER" in refused.json()["detail"]


async def test_json_nested_too_deep_is_a_400_on_mcp_as_on_rest(target: Any) -> None:
    auth = {"x-api-key": KEYS["dave"], "accept": "application/json", "content-type": "application/json"}
    deep = "[" * 300 + "]" * 300  # parsed by Python's json, but deeper than what the routes handle
    call = (
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
        f'"params": {{"name": "adder", "arguments": {{"a": 1, "x": {deep}}}}}}}'
    )
    run = f'{{"assistant_id": "sleepy", "input": {{"seconds": 0, "x": {deep}}}}}'
    thread = f'{{"metadata": {{"x": {deep}}}}}'
    async with _http(target, headers=auth) as http:
        answers = [
            await http.post("/mcp", content=call),
            await http.post("/runs/wait", content=run),
            await http.post("/threads", content=thread),
        ]
        threads = (await http.post("/threads/count", json={})).json()

    assert [a.status_code for a in answers] == [400, 400, 400], [a.text[:200] for a in answers]
    assert all("nested more than" in a.json()["detail"] for a in answers)
    assert threads == 0, "nothing was written"


async def test_metrics_answers_no_key_guesses_past_the_addresss_budget(target: Any) -> None:
    """``/metrics`` is not counted, but it checks keys: its refusals count against the address like any
    other, and past that budget a guess there gets 429 unread, not a real 401/200 answer."""
    async with _http(target) as http:
        erin = await http.get("/metrics", headers={"x-api-key": KEYS["erin"]})  # a key seen accepted
        guesses = [
            (await http.get("/metrics", headers={"x-api-key": uuid.uuid4().hex})).status_code
            for _ in range(LIMIT + 2)
        ]
        again = await http.get("/metrics", headers={"x-api-key": KEYS["erin"]})

    assert erin.status_code == 200
    assert guesses == [401] * LIMIT + [429, 429]
    assert again.status_code == 200, "a key this process has seen accepted keeps working"
