"""With API keys on: the bound on one caller's open event streams (429 with Retry-After, per caller),
paths opened by ``GRAPHRUN_AUTH_OPEN_PATHS``, and CORS without a wildcard by default."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from tests.harness.embedded import Server
from tests.harness.waiting import eventually

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-fedcba9876543210"
SERVER_ENV = {
    "GRAPHRUN_API_KEYS": f"alice={ALICE},bob={BOB}",
    "GRAPHRUN_MAX_STREAMS_PER_OWNER": "2",
    "GRAPHRUN_AUTH_OPEN_PATHS": "/ok,/ready,/metrics",
}


@contextlib.asynccontextmanager
async def as_owner(server: Server, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}, timeout=30.0) as http:
        yield http


async def _open_stream(http: httpx.AsyncClient, thread_id: str, stack: contextlib.AsyncExitStack) -> int:
    response = await stack.enter_async_context(http.stream("GET", f"/threads/{thread_id}/stream"))
    if response.status_code != 200:
        await response.aread()
    return response.status_code


async def test_one_caller_holds_at_most_the_bound_of_streams(server: Server) -> None:
    async with as_owner(server, ALICE) as alice, as_owner(server, BOB) as bob:
        a = (await alice.post("/threads", json={})).json()["thread_id"]
        b = (await bob.post("/threads", json={})).json()["thread_id"]
        async with contextlib.AsyncExitStack() as first:
            assert await _open_stream(alice, a, first) == 200
            async with contextlib.AsyncExitStack() as second:
                assert await _open_stream(alice, a, second) == 200
                refused = await alice.get(f"/threads/{a}/stream")
                assert refused.status_code == 429
                assert refused.headers["retry-after"] == "1"
                assert "GRAPHRUN_MAX_STREAMS_PER_OWNER" in refused.json()["detail"]
                async with contextlib.AsyncExitStack() as bobs:  # another caller has a bound of its own
                    assert await _open_stream(bob, b, bobs) == 200
            # Closing a stream gives its place back.

            async def third() -> int:
                async with contextlib.AsyncExitStack() as again:
                    return await _open_stream(alice, a, again)

            await eventually(third, lambda status: status == 200, what="a stream once one was closed")


async def test_open_paths_need_no_key_and_the_rest_do(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/ok")).status_code == 200
        assert (await http.get("/docs")).status_code == 401
        assert (await http.get("/openapi.json")).status_code == 401
        # Files that hold no data: the documentation pages' scripts and the way to the console.
        assert (await http.get("/docs/assets/swagger-ui-bundle.js")).status_code == 200
        assert (await http.get("/", headers={"accept": "text/html"})).status_code == 307


async def test_cors_allows_no_other_origin_by_default_when_auth_is_on(server: Server) -> None:
    preflight = {"origin": "https://elsewhere.example", "access-control-request-method": "POST"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.options("/threads", headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
