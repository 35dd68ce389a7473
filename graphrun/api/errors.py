"""graphrun errors -> HTTP: one table, one place. Bodies are ``{"detail": message}``, as the official
server writes them."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from graphrun import errors
from graphrun.savers import UNAVAILABLE

log = structlog.get_logger("graphrun.api")

STATUS: dict[type[errors.GraphrunError], int] = {
    errors.NotFound: 404,
    errors.Forbidden: 403,
    errors.BadRequest: 400,
    errors.InvalidRequest: 422,
    errors.Conflict: 409,
    errors.WaitTimedOut: 504,
    errors.ShuttingDown: 503,
    errors.StoreUnavailable: 503,
    errors.ConfigError: 500,
    errors.GraphrunError: 500,
}


def status_for(exc: errors.GraphrunError) -> int:
    if isinstance(exc, errors.Refused):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _graphrun_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GraphrunError)
    status = status_for(exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    if isinstance(exc, errors.Refused):
        headers = exc.headers
    return JSONResponse({"detail": exc.message}, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with a one-line ``detail`` naming each bad field, plus FastAPI's structured list as ``errors``."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid" or (
            err.get("type") == "missing" and tuple(err["loc"]) == ("body",)
        ):
            problems.append(
                f"Invalid JSON in request body: {err.get('ctx', {}).get('error', 'the body is empty')}"
            )
            continue
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    detail = "; ".join(problems) or "invalid request"
    return JSONResponse({"detail": detail, "errors": _plain(exc.errors())}, status_code=422)


def _plain(errs: object) -> object:
    # pydantic puts the offending exception object in `ctx`; keep the response JSON-serializable.
    if isinstance(errs, (list, tuple)):
        return [_plain(e) for e in errs]
    if isinstance(errs, dict):
        return {k: _plain(v) for k, v in errs.items() if k != "url"}
    if isinstance(errs, (str, int, float, bool)) or errs is None:
        return errs
    return str(errs)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug or an unreachable dependency: logged with its traceback, answered as JSON like every error."""
    if isinstance(exc, UNAVAILABLE):  # met inside a saver: LangGraph's calls do not go through our stores
        log.warning("request_unavailable", method=request.method, path=request.url.path, error=str(exc))
        detail = f"a database is unreachable ({type(exc).__name__}); retry shortly"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})
    log.error("request_failed", method=request.method, path=request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"Internal server error ({type(exc).__name__})"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.GraphrunError, _graphrun_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
