"""``GRAPHRUN_RATE_LIMIT`` under ``http.mount_prefix``: the probes and scrapes under the prefix are not
counted, as they are not at the root (the limiter compared the full path, prefix included, with
``/ok``); both modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

CONFIG = Path(__file__).resolve().parent / "prefix.langgraph.json"
SERVER_ENV = {"GRAPHRUN_RATE_LIMIT": "5/minute"}
PREFIX = "/api/v1"


async def test_probes_and_scrapes_under_the_prefix_are_not_counted(target: Any) -> None:
    async with httpx.AsyncClient(base_url=target.url, timeout=30) as http:
        for _ in range(6):
            assert (await http.get(f"{PREFIX}/ok")).status_code == 200
            assert (await http.get(f"{PREFIX}/metrics")).status_code == 200
        answers = [await http.post(f"{PREFIX}/threads/count", json={}) for _ in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [429]
