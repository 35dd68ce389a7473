"""A2A (Agent2Agent) over JSON-RPC 2.0, as the official server serves it: each assistant is an agent at
``POST /a2a/{assistant_id}`` with its agent card at ``GET /.well-known/agent-card.json?assistant_id=…``
(also ``GET /a2a/{assistant_id}`` and ``/a2a/{assistant_id}/.well-known/agent-card.json``).

``SendMessage`` (``message/send``) writes a run through run submission and waits for it;
``SendStreamingMessage`` (``message/stream``) answers SSE as the run goes; ``GetTask`` and
``CancelTask`` read and cancel. Tasks are runs and contexts threads (``api/_a2a.py``): the worker
executes them like any other run, and a caller sees only its own threads. A message with the
``taskId`` of a task waiting for input (an ``interrupt()``) resumes it with its text (or a data
part's ``resume``). JSON-RPC errors answer 200 with the error in the body, as the spec says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

import graphrun
from graphrun.api import _a2a, _a2a_tasks, sse
from graphrun.api._a2a import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError
from graphrun.api.authz import Access, AccessDep
from graphrun.api.deps import Services, Svc
from graphrun.graphs import graph_schemas
from graphrun.types import Json

router = APIRouter(tags=["a2a"])

# The runs of a context read to find a task's latest run and its history's tasks.
run_scan_limit = 1000


# ---------------------------------------------------------------- agent cards


@router.get("/.well-known/agent-card.json")
async def agent_card(request: Request, svc: Svc, access: AccessDep) -> Response:
    assistant_id = request.query_params.get("assistant_id")
    if not assistant_id:
        return _card_error("Missing required query parameter: assistant_id")
    return await _card(request, svc, access, assistant_id)


@router.get("/a2a/{assistant_id}/.well-known/agent-card.json")
@router.get("/a2a/{assistant_id}/.well-known/agent.json")
async def assistant_card(assistant_id: str, request: Request, svc: Svc, access: AccessDep) -> Response:
    return await _card(request, svc, access, assistant_id)


async def _card(request: Request, svc: Services, access: Access, assistant_id: str) -> Response:
    try:
        assistant = await _a2a_tasks.assistant_of(svc, access, assistant_id)
    except RpcError as exc:
        return _card_error(exc.message)
    async with svc.graphs.graph(assistant.graph_id, assistant.config) as graph:  # type: ignore[arg-type]
        found = await graph_schemas(graph, assistant.graph_id)
    card = _a2a.agent_card(
        name=assistant.name,
        description=assistant.description,
        assistant_id=assistant.assistant_id,
        base_url=_base_url(request, assistant.assistant_id),
        input_schema=found.get("input_schema") or found.get("state_schema") or {},
        version=graphrun.__version__,
    )
    return JSONResponse(card)


def _card_error(message: str) -> Response:
    return JSONResponse({"error": {"code": INVALID_PARAMS, "message": message}}, status_code=400)


def _base_url(request: Request, assistant_id: str) -> str:
    """Where this server is, as the caller reached it (a proxy's ``X-Forwarded-Proto`` counts)."""
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    port = request.url.port
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    host = request.url.hostname or "localhost"
    path = request.url.path
    for suffix in ("/.well-known/agent-card.json", "/.well-known/agent.json", f"/a2a/{assistant_id}"):
        path = path.removesuffix(suffix)
    return f"{scheme}://{host}{'' if port is None or default else f':{port}'}{path.rstrip('/')}"


# ---------------------------------------------------------------- JSON-RPC


@router.api_route("/a2a/{assistant_id}", methods=["GET", "POST", "DELETE"])
@router.api_route("/a2a/{assistant_id}/", methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def endpoint(assistant_id: str, request: Request, svc: Svc, access: AccessDep) -> Response:
    if request.method == "GET":  # the agent's URL answers its card
        return await _card(request, svc, access, assistant_id)
    if request.method == "DELETE":
        return Response(status_code=405)
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return JSONResponse(_a2a.error(_a2a.PARSE_ERROR, "Invalid JSON payload"))
    try:
        call = _Call.of(payload, request.headers.get("accept") or "")
    except RpcError as exc:
        return JSONResponse(_a2a.error(exc.code, exc.message, _id(payload)))
    except _NotAccepted as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    try:
        uuid.UUID(assistant_id)
    except ValueError:
        return call.answer_error(RpcError(INVALID_PARAMS, "Invalid assistant ID: must be a UUID"))
    try:
        if call.method == "SendStreamingMessage":
            started = await _a2a_tasks.start(svc, access, assistant_id, call.params)
            events = _a2a_tasks.stream_events(svc, started, assistant_id, call.update)
            return StreamingResponse(
                events, media_type="text/event-stream; charset=utf-8", headers=sse.HEADERS
            )
        if call.method == "SendMessage":
            return call.answer({"task": await _a2a_tasks.send(svc, access, assistant_id, call.params)})
        if call.method == "GetTask":
            return call.answer(await _a2a_tasks.get_task(svc, access, assistant_id, call.params))
        return call.answer(await _a2a_tasks.cancel_task(svc, access, assistant_id, call.params))
    except RpcError as exc:
        return call.answer_error(exc)


def _id(payload: Any) -> Any:
    found = payload.get("id") if isinstance(payload, dict) else None
    return found if isinstance(found, (str, int, float)) else None


class _NotAccepted(Exception):
    """The request's Accept header refuses the answer's media type (a 400, as the official server)."""


@dataclass(frozen=True)
class _Call:
    """One JSON-RPC request, checked as the official server checks it."""

    id: str | int | float
    method: str
    params: Json
    spec: bool  # an A2A 0.3 method name: answered in the 0.3 spelling

    @classmethod
    def of(cls, payload: Any, accept: str) -> _Call:
        if not isinstance(payload, dict):
            raise RpcError(INVALID_REQUEST, "Invalid message format: expected object")
        if payload.get("jsonrpc") != "2.0":
            raise RpcError(INVALID_REQUEST, "Invalid JSON-RPC message: missing or invalid jsonrpc version")
        request_id, method = payload.get("id"), payload.get("method")
        spec = isinstance(method, str) and method in _a2a.ALIASES
        method = _a2a.ALIASES.get(method, method) if isinstance(method, str) else method
        if request_id is not None and not isinstance(request_id, (str, int, float)):
            raise RpcError(
                INVALID_REQUEST, "Invalid JSON-RPC request: 'id' must be a string, number, or null"
            )
        if method is not None and not isinstance(method, str):
            raise RpcError(METHOD_NOT_FOUND, "Method not found: method must be a string")
        if method is not None and method not in _a2a.METHODS:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        params = payload.get("params", {})
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "Invalid params: must be an object")
        if method in ("SendMessage", "SendStreamingMessage") and not isinstance(params.get("message"), dict):
            raise RpcError(INVALID_PARAMS, "Missing or invalid 'message' in params")
        wanted = "text/event-stream" if method == "SendStreamingMessage" else "application/json"
        if not _accepts(accept, wanted):
            raise _NotAccepted(f"Accept header must include {wanted}")
        if request_id is None or method is None:
            raise RpcError(
                INVALID_REQUEST, "Invalid message format: must be a JSON-RPC request or notification"
            )
        return cls(request_id, method, params, spec)

    def body(self, result: Json) -> Json:
        answer = {"jsonrpc": "2.0", "id": self.id, "result": result}
        return _a2a.spec_format(answer) if self.spec else answer

    def update(self, kind: str, data: Json) -> Json:
        """One streamed answer: wrapped by its kind in A2A 1.0 (``{"statusUpdate": …}``), marked with
        ``kind`` in 0.3 (``status-update``)."""
        return self.body({**data, "kind": _KINDS[kind]} if self.spec else {kind: data})

    def answer(self, result: Json) -> Response:
        return JSONResponse(self.body(result))

    def answer_error(self, exc: RpcError) -> Response:
        return JSONResponse(_a2a.error(exc.code, exc.message, self.id))


_EVENT_STREAM = "text/event-stream; charset=utf-8"
_KINDS = {"task": "task", "statusUpdate": "status-update", "artifactUpdate": "artifact-update"}


def _accepts(header: str, media_type: str) -> bool:
    for item in header.split(","):
        candidate = item.split(";", 1)[0].strip().lower()
        if candidate in ("*/*", media_type) or (
            candidate.endswith("/*") and media_type.startswith(candidate[:-1])
        ):
            return True
    return False
