"""``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles served from a package, so that the
pages work without the internet: FastAPI's own pages load them from a CDN and are blank offline.

FastAPI's documented self-hosting recipe ("Custom Docs UI Static Assets") with the assets of the
``fastapi-offline`` wheel, which ships Swagger UI's and ReDoc's bundles and refreshes them each release
(its ``FastAPIOffline`` factory itself is not used: graphrun builds its own app). The assets hold no data
and are answered without credentials, like the console's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_PATH = "/docs/assets"
DOCS_PATH, OAUTH2_REDIRECT_PATH, REDOC_PATH = "/docs", "/docs/oauth2-redirect", "/redoc"


def install(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect page and ``/redoc`` on ``app`` (created with
    ``docs_url=None, redoc_url=None``), and their assets under ``/docs/assets``."""
    openapi_url = str(app.openapi_url)

    def pages(request: Request, title: str) -> dict[str, Any]:
        """What both pages are given: the OpenAPI document's URL (under the mount prefix, if any) and
        their title."""
        return {"openapi_url": at(request, openapi_url), "title": f"{app.title} - {title}"}

    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            **pages(request, "Swagger UI"),
            oauth2_redirect_url=at(request, OAUTH2_REDIRECT_PATH),
            swagger_js_url=at(request, f"{ASSETS_PATH}/swagger-ui-bundle.js"),
            swagger_css_url=at(request, f"{ASSETS_PATH}/swagger-ui.css"),
            swagger_favicon_url=at(request, f"{ASSETS_PATH}/favicon.png"),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            **pages(request, "ReDoc"),
            redoc_js_url=at(request, f"{ASSETS_PATH}/redoc.standalone.js"),
            redoc_favicon_url=at(request, f"{ASSETS_PATH}/favicon.png"),
            with_google_fonts=False,
        )

    app.router.routes.extend(
        Route(path, endpoint, methods=["GET"], include_in_schema=False)
        for path, endpoint in (
            (DOCS_PATH, swagger),
            (OAUTH2_REDIRECT_PATH, oauth2_redirect),
            (REDOC_PATH, redoc),
        )
    )
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")


def at(request: Request, path: str) -> str:
    """``path`` as the browser reaches it: under ``http.mount_prefix`` (the ASGI root path) if set."""
    return str(request.scope.get("root_path", "")) + path


def is_asset(path: str) -> bool:
    return path.startswith(ASSETS_PATH + "/")
