"""A user's own HTTP app for ``http.app``: a route of its own, one that shadows graphrun's ``/info``,
a middleware that marks every response, and a lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response

started: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    started.append("up")
    yield


app = FastAPI(lifespan=lifespan)


@app.middleware("http")
async def mark(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers["x-custom-middleware"] = "seen"
    return response


@app.get("/custom/hello")
async def hello() -> dict[str, object]:
    return {"hello": "world", "lifespan": started}


@app.get("/info")
async def info() -> dict[str, object]:
    return {"custom": True}
