"""Meta endpoints: liveness, info, health, readiness and the API description."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


async def test_ok(http: httpx.AsyncClient) -> None:
    r = await http.get("/ok")
    assert r.status_code == 200
    # As the official server's embedded runtime: no data dependency to list (tests/compat checks both modes).
    assert r.json() == {"ok": True, "services": {}}


async def test_info_is_a_json_object(http: httpx.AsyncClient) -> None:
    # agent-chat-ui calls GET /info before anything else (reference notes).
    r = await http.get("/info")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert isinstance(r.json(), dict)


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_health_and_ready(http: httpx.AsyncClient, path: str) -> None:
    # graphrun's own probes (ARCHITECTURE.md: /ok alive, /health, /ready).
    r = await http.get(path)
    assert r.status_code == 200, r.text


async def test_openapi_describes_the_api(http: httpx.AsyncClient) -> None:
    r = await http.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert "openapi" in spec
    paths = spec["paths"]
    for path in (
        "/assistants/search",
        "/threads",
        "/threads/{thread_id}/runs/wait",
        "/runs/wait",
        "/store/items",
    ):
        assert path in paths, f"{path} missing from /openapi.json"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_everything_from_this_server(http: httpx.AsyncClient, page: str) -> None:
    """Offline, a page that loads Swagger UI or ReDoc from a CDN is blank: every script, style and icon
    the pages name is a path on this server, and answers."""
    r = await http.get(page)
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    linked = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *['"]([^'"]+)['"]""", r.text)
    urls = [a or b for a, b in linked]
    assert any(u.endswith(".js") for u in urls), r.text
    assert not [u for u in urls if "//" in u], f"{page} loads from another host"
    assert "fonts.googleapis" not in r.text
    for url in urls:
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


async def test_the_root_leads_a_browser_to_the_console_and_answers_clients_as_ok(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/", headers={"accept": "text/html,*/*;q=0.8"}, follow_redirects=True)
    assert page.status_code == 200
    assert str(page.url).endswith("/console/")
    assert "text/html" in page.headers["content-type"]
    probe = await http.get("/")  # the official server answers at / what it answers at /ok
    assert probe.status_code == 200
    assert probe.json() == (await http.get("/ok")).json()
    assert probe.json()["ok"] is True


async def test_unknown_path_is_404(http: httpx.AsyncClient) -> None:
    r = await http.get("/no-such-endpoint")
    assert r.status_code == 404


async def test_ready_names_each_dependency(http: httpx.AsyncClient) -> None:
    body = (await http.get("/ready")).json()

    assert body["status"] == "ok"
    assert body["checks"] == {"process": "ok", "control_store": "ok", "checkpointer": "ok", "event_bus": "ok"}
