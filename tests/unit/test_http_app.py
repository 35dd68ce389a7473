"""``http.app`` as ``create_app`` merges it: graphrun's auth reaches the user's routes only with
``enable_custom_route_auth``, and ``middleware_order: auth_first`` puts the user's middleware inside
authentication (so it sees the caller)."""

from __future__ import annotations

from typing import Any, cast

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from graphrun.api import create_app
from graphrun.api.deps import Services
from graphrun.settings import Settings

KEY = "alice-key-0123456789abcdef"


class SeesCaller:
    """Records on each response whether authentication had run before it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = "caller" in scope.get("state", {})

        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-saw-caller", str(seen).lower().encode()))
            await send(message)

        await self.app(scope, receive, marked)


def _user_app() -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    app = Starlette(routes=[Route("/custom/hello", hello)])
    app.add_middleware(SeesCaller)
    return app


async def _get(http_section: dict[str, Any], path: str, **headers: str) -> httpx.Response:
    svc = Services(Settings(api_keys=f"alice={KEY}"), cast(Any, None), cast(Any, None), cast(Any, None))
    app = create_app(svc, http=http_section, user_app=_user_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://graphrun") as http:
        return await http.get(path, headers=headers)


async def test_the_users_routes_are_open_by_default() -> None:
    answer = await _get({}, "/custom/hello")

    assert answer.status_code == 200
    assert answer.headers["x-saw-caller"] == "false"  # middleware_first: theirs runs before auth


async def test_custom_route_auth_puts_the_users_routes_behind_the_keys() -> None:
    assert (await _get({"enable_custom_route_auth": True}, "/custom/hello")).status_code == 401
    allowed = await _get({"enable_custom_route_auth": True}, "/custom/hello", **{"x-api-key": KEY})
    assert allowed.status_code == 200


async def test_auth_first_runs_the_users_middleware_inside_authentication() -> None:
    answer = await _get(
        {"enable_custom_route_auth": True, "middleware_order": "auth_first"},
        "/custom/hello",
        **{"x-api-key": KEY},
    )

    assert answer.headers["x-saw-caller"] == "true"


async def test_graphrun_routes_stay_behind_the_keys() -> None:
    assert (await _get({}, "/threads/00000000-0000-0000-0000-000000000000")).status_code == 401
