"""A request body over ``GRAPHRUN_MAX_BODY_BYTES`` is refused with 413 and a message, with or without a
Content-Length, and nothing is written; a body under it goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

SERVER_ENV = {"GRAPHRUN_MAX_BODY_BYTES": "100000"}


async def _thread_count(http: httpx.AsyncClient) -> int:
    return int((await http.post("/threads/count", json={})).json())


async def test_a_body_over_the_limit_is_413_and_writes_nothing(http: httpx.AsyncClient) -> None:
    before = await _thread_count(http)

    answer = await http.post("/threads", json={"metadata": {"blob": "x" * 200_000}})

    assert answer.status_code == 413
    assert "over the limit of 100000 bytes" in answer.json()["detail"]
    assert "GRAPHRUN_MAX_BODY_BYTES" in answer.json()["detail"]
    assert await _thread_count(http) == before


async def test_a_chunked_body_is_counted_as_it_arrives(http: httpx.AsyncClient) -> None:
    before = await _thread_count(http)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"metadata": {"blob": "'
        for _ in range(30):
            yield b"y" * 10_000
        yield b'"}}'

    answer = await http.post("/threads", content=chunks(), headers={"content-type": "application/json"})

    assert answer.status_code == 413
    assert "more than 100000 bytes" in answer.json()["detail"]
    assert await _thread_count(http) == before


async def test_a_body_under_the_limit_goes_through(http: httpx.AsyncClient) -> None:
    answer = await http.post("/threads", json={"metadata": {"blob": "z" * 50_000}})

    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"]["blob"] == "z" * 50_000
