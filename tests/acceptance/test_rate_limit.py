"""``GRAPHRUN_RATE_LIMIT``: a client past its rate gets 429 with ``Retry-After`` and a message; probes and
scrapes are not counted. (The limit shared by several API processes through Redis is tested in
tests/production/test_limits.py.)"""

from __future__ import annotations

import httpx

SERVER_ENV = {"GRAPHRUN_RATE_LIMIT": "5/minute"}


async def test_past_its_rate_a_client_gets_429_with_retry_after(http: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await http.get("/ok")).status_code == 200  # probes are not counted
    answers = [await http.post("/threads/count", json={}) for _ in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "the limit is 5 per 1 minute" in refused.json()["detail"]
    assert (await http.get("/ready")).status_code == 200
