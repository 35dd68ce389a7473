"""``GRAPHRUN_RATE_LIMIT`` with API keys on: each key's owner is its own budget, and a client cannot get
a fresh budget by inventing a new key per request, since refused credentials count against the address. Past
that, the address's credentials are refused unread, but for keys the server has seen accepted."""

from __future__ import annotations

import uuid

import httpx

ALICE_KEY = "alice-key-0123456789abcdef"
SERVER_ENV = {"GRAPHRUN_RATE_LIMIT": "5/minute", "GRAPHRUN_API_KEYS": f"alice={ALICE_KEY}"}


async def test_invented_keys_share_their_addresss_budget_and_real_keys_keep_theirs(
    http: httpx.AsyncClient,
) -> None:
    first = await http.post("/threads/count", json={}, headers={"x-api-key": ALICE_KEY})
    assert first.status_code == 200
    invented = [
        await http.post("/threads/count", json={}, headers={"x-api-key": uuid.uuid4().hex}) for _ in range(7)
    ]

    assert [a.status_code for a in invented] == [401] * 5 + [429] * 2
    refused = invented[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "too many requests with a refused credential from 127.0.0.1" in refused.json()["detail"]
    # alice's key, from the same address, keeps its own budget (of which she has used one).
    mine = [await http.post("/threads/count", json={}, headers={"x-api-key": ALICE_KEY}) for _ in range(5)]
    assert [a.status_code for a in mine] == [200] * 4 + [429]
    assert "too many requests from caller 'alice'" in mine[-1].json()["detail"]
