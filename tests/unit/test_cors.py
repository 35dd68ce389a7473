"""CORS as ``create_app`` applies it: the setting, ``http.cors`` of langgraph.json over it, and every
origin by default only while auth is off. Preflights are answered by the middleware alone."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from graphrun import errors
from graphrun.api import create_app
from graphrun.api.deps import Services
from graphrun.settings import Settings

PREFLIGHT = {"origin": "https://app.example", "access-control-request-method": "POST"}


async def _preflight(settings: Settings, cors: dict[str, Any] | None = None) -> httpx.Response:
    svc = Services(settings, cast(Any, None), cast(Any, None), cast(Any, None))
    transport = httpx.ASGITransport(app=create_app(svc, cors=cors))
    async with httpx.AsyncClient(transport=transport, base_url="http://graphrun") as http:
        return await http.options("/threads", headers=PREFLIGHT)


async def test_without_auth_every_origin_is_allowed_by_default() -> None:
    answer = await _preflight(Settings())

    assert answer.headers["access-control-allow-origin"] == "*"


async def test_with_auth_no_origin_is_allowed_by_default() -> None:
    answer = await _preflight(Settings(api_keys="alice=alice-key-0123456789abcdef"))

    assert "access-control-allow-origin" not in answer.headers


async def test_the_setting_names_the_origins() -> None:
    keyed = Settings(api_keys="alice=alice-key-0123456789abcdef", cors_allow_origins="https://app.example")

    answer = await _preflight(keyed)

    assert answer.headers["access-control-allow-origin"] == "https://app.example"


async def test_http_cors_of_langgraph_json_wins() -> None:
    cors = {"allow_origins": ["https://other.example"], "allow_credentials": True, "max_age": 60}

    refused = await _preflight(Settings(cors_allow_origins="https://app.example"), cors)
    allowed = await _preflight(Settings(), {**cors, "allow_origins": ["https://app.example"]})

    assert "access-control-allow-origin" not in refused.headers
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert allowed.headers["access-control-max-age"] == "60"


async def test_an_unknown_http_cors_key_is_named() -> None:
    with pytest.raises(errors.ConfigError, match="allow_everything"):
        await _preflight(Settings(), {"allow_everything": True})


async def test_refusals_of_the_limits_carry_cors_headers_for_the_browser() -> None:
    svc = Services(
        Settings(rate_limit="1/minute", max_body_bytes=10), cast(Any, None), cast(Any, None), cast(Any, None)
    )
    transport = httpx.ASGITransport(app=create_app(svc))
    origin = {"origin": "https://app.example"}
    async with httpx.AsyncClient(transport=transport, base_url="http://graphrun") as http:
        too_big = await http.post("/threads", content=b"x" * 100, headers=origin)
        assert (await http.get("/nothing-here", headers=origin)).status_code == 404  # counted
        too_many = await http.post("/threads", json={}, headers=origin)
        preflight = await http.options("/threads", headers=PREFLIGHT)  # answered, not counted

    assert too_big.status_code == 413
    assert too_many.status_code == 429
    assert preflight.status_code == 200
    for answer in (too_big, too_many, preflight):
        assert answer.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in too_many.headers["access-control-expose-headers"].lower()
