"""``graphrun.api.errors``: every graphrun error maps to the status the official server answers with.

The expected table lists every class of ``graphrun.errors``: a new error class fails here until someone
decides its status.
"""

from __future__ import annotations

import inspect

import httpx
import psycopg
import pytest
import redis.exceptions
from fastapi import FastAPI

from graphrun import errors
from graphrun.api import errors as api_errors
from graphrun.api.errors import status_for

EXPECTED_STATUS: dict[type[errors.GraphrunError], int] = {
    errors.GraphrunError: 500,
    errors.ConfigError: 500,
    errors.NotFound: 404,
    errors.AssistantNotFound: 404,
    errors.ThreadNotFound: 404,
    errors.RunNotFound: 404,
    errors.CronNotFound: 404,
    errors.InvalidRequest: 422,
    errors.BadRequest: 400,
    errors.Conflict: 409,
    errors.ThreadBusy: 409,
    errors.AlreadyExists: 409,
    errors.DeltaThreadNotPrunable: 409,
    errors.WaitTimedOut: 504,
    errors.ShuttingDown: 503,
    errors.StoreUnavailable: 503,
    errors.LeaseLost: 500,
    errors.DataDirLocked: 500,
    errors.Forbidden: 403,
    errors.Refused: 401,  # by default; an auth handler's HTTPException sets its own (below)
}


def test_every_error_class_has_an_expected_status() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.GraphrunError) and cls.__module__ == errors.__name__
    }

    assert defined == set(EXPECTED_STATUS)


@pytest.mark.parametrize(
    ("cls", "status"), list(EXPECTED_STATUS.items()), ids=[c.__name__ for c in EXPECTED_STATUS]
)
def test_status_for(cls: type[errors.GraphrunError], status: int) -> None:
    assert status_for(cls()) == status
    assert status_for(cls("with a custom message")) == status


def test_a_refusal_keeps_the_auth_handlers_status() -> None:
    assert status_for(errors.Refused("slow down", 429, {"Retry-After": "3"})) == 429


def test_subclass_outside_the_table_uses_its_parent() -> None:
    class GraphNotFound(errors.NotFound):
        """Graph not found."""

    assert status_for(GraphNotFound()) == 404


def test_docstring_is_the_default_message() -> None:
    assert errors.ThreadNotFound().message == "Thread not found."
    assert errors.ThreadNotFound("Thread t-1 not found").message == "Thread t-1 not found"


def _app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    api_errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    "exc",
    [psycopg.OperationalError("connection refused"), redis.exceptions.ConnectionError("refused")],
    ids=["postgres", "redis"],
)
async def test_an_unreachable_database_inside_a_saver_is_a_503_to_retry(exc: Exception) -> None:
    transport = httpx.ASGITransport(app=_app_raising(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "unreachable" in response.json()["detail"]


async def test_any_other_exception_is_a_500_in_json() -> None:
    transport = httpx.ASGITransport(app=_app_raising(KeyError("x")), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error (KeyError)"}
