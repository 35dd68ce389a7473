"""``/mcp``: the assistants as MCP tools, over the Streamable HTTP transport, as the official server
serves them (stateless: every POST is one JSON-RPC message, answered with ``application/json``).

``initialize`` negotiates the protocol version; ``tools/list`` lists each assistant the caller may
see as a tool named after it, whose ``inputSchema`` is its graph's input schema; ``tools/call`` runs
the assistant statelessly with the arguments as input and answers its output. A run is written and
waited for as ``POST /runs/wait`` does: the API executes nothing itself.

Written as a route rather than with the ``mcp`` package's server: the official server's endpoint is
this stateless JSON-RPC exchange, and as an ordinary route it gets graphrun's authentication, rate
limits and per-owner isolation like every other one. The tests speak to it with the ``mcp`` client.
"""

from __future__ import annotations

import json
import re

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

import graphrun
from graphrun import encoding, errors
from graphrun.api import schemas
from graphrun.api._runs import await_output
from graphrun.api.authz import Access, AccessDep
from graphrun.api.deps import Services, Svc
from graphrun.api.submit import create
from graphrun.graphs import graph_schemas
from graphrun.models import Assistant
from graphrun.stores.base import Page
from graphrun.types import Json

router = APIRouter(tags=["mcp"])
log = structlog.get_logger("graphrun.mcp")

PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
PAGE_SIZE = 100
MAX_CURSOR = 10**9  # beyond any deployment's assistants; keeps the offset inside the databases' integers
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
_NAME_MAX = 128
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_\-.]")


def tool_name(assistant_name: str) -> str:
    """An assistant's name as an MCP tool name: letters, digits, ``_``, ``-`` and ``.``, 128 at most."""
    return _NOT_IN_NAME.sub("_", assistant_name)[:_NAME_MAX]


@router.get("/mcp", include_in_schema=False)
async def mcp_get() -> Response:
    return Response(status_code=405)  # no server-initiated stream: the endpoint is stateless


@router.delete("/mcp", include_in_schema=False)
async def mcp_delete() -> Response:
    return Response(status_code=404)  # no sessions to end


@router.post("/mcp", include_in_schema=False)
async def mcp_post(request: Request, svc: Svc, access: AccessDep) -> Response:
    try:
        message = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return _refused("Invalid JSON")
    accept = request.headers.get("accept", "")
    if "application/json" not in accept and "text/event-stream" not in accept:
        return _refused("Accept header must include application/json or text/event-stream")
    if not isinstance(message, dict):
        return _refused("Invalid message format: a JSON-RPC message is an object")
    if message.get("jsonrpc") != "2.0":
        return _refused("Invalid JSON-RPC message: missing or invalid jsonrpc version")
    id_, method = message.get("id"), message.get("method")
    if id_ is not None and method:
        params = message.get("params") or {}
        if not isinstance(params, dict):
            answer: Json = {"error": {"code": INVALID_PARAMS, "message": "params must be an object"}}
        else:
            answer = await _answer(svc, access, str(method), params)
        return JSONResponse({"jsonrpc": "2.0", "id": id_, **answer})
    if id_ is not None or method:
        return Response(status_code=202)  # a response or a notification: nothing to answer
    return _refused("Invalid message format: neither a request, a response nor a notification")


async def _answer(svc: Services, access: Access, method: str, params: Json) -> Json:
    if method == "initialize":
        requested = params.get("protocolVersion")
        version = requested if requested in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1]
        return {
            "result": {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "graphrun", "version": graphrun.__version__},
            }
        }
    if method == "ping":
        return {"result": {}}
    if method == "tools/list":
        return await _tools_list(svc, access, params)
    if method == "tools/call":
        return await _tools_call(svc, access, params)
    return {"error": {"code": METHOD_NOT_FOUND, "message": f"Method not found: {method}"}}


async def _assistants(svc: Services, access: Access, offset: int, limit: int) -> list[Assistant]:
    value: Json = {"graph_id": None, "metadata": {}, "name": None, "limit": limit, "offset": offset}
    scope = await access.scope("assistants", "search", value)
    page = Page(limit, offset, "created_at", "asc")
    return await svc.store.search_assistants(None, {}, None, page, scope=scope)


def _unique(assistants: list[Assistant]) -> list[tuple[Assistant, str]]:
    """One tool per name: of two assistants whose names read the same as tools, the first is kept."""
    seen: set[str] = set()
    unique = []
    for assistant in assistants:
        name = tool_name(assistant.name)
        if name in seen:
            log.warning("mcp_duplicate_tool_name", assistant_id=assistant.assistant_id, name=name)
            continue
        seen.add(name)
        unique.append((assistant, name))
    return unique


async def _tools_list(svc: Services, access: Access, params: Json) -> Json:
    try:
        cursor = min(max(0, int(params.get("cursor") or 0)), MAX_CURSOR)
    except (TypeError, ValueError):
        cursor = 0
    assistants = await _assistants(svc, access, cursor, PAGE_SIZE)
    tools = []
    for assistant, name in _unique(assistants):
        try:
            async with svc.graphs.graph(assistant.graph_id, assistant.config) as graph:  # type: ignore[arg-type]
                found = await graph_schemas(graph, assistant.graph_id)
        except Exception as exc:  # a graph whose schema cannot be drawn is left out, not the whole list
            log.warning("mcp_schema_failed", assistant_id=assistant.assistant_id, error=type(exc).__name__)
            continue
        if found.get("input_schema") is None:  # as the official server: no schema, no tool
            log.warning("mcp_no_input_schema", assistant_id=assistant.assistant_id)
            continue
        input_schema = dict(found["input_schema"])
        input_schema.setdefault("type", "object")  # MCP wants an object schema
        tools.append(
            {
                "name": name,
                "title": assistant.name,
                "description": assistant.description or f"Tool based on the {assistant.name} assistant",
                "inputSchema": input_schema,
                "annotations": {
                    "readOnlyHint": False,
                    "destructiveHint": False,
                    "idempotentHint": False,
                    "openWorldHint": True,
                },
            }
        )
    result: Json = {"tools": tools}
    if len(assistants) == PAGE_SIZE:
        result["nextCursor"] = str(cursor + PAGE_SIZE)
    return {"result": result}


async def _tools_call(svc: Services, access: Access, params: Json) -> Json:
    name = params.get("name")
    arguments = params.get("arguments") or {}
    if not isinstance(name, str) or not name:
        return {"error": {"code": INVALID_PARAMS, "message": f"Unknown tool: {name}"}}
    if not isinstance(arguments, dict):
        return {"error": {"code": INVALID_PARAMS, "message": "arguments must be an object"}}
    matching = [a for a, n in _unique(await _assistants(svc, access, 0, 1000)) if n == name]
    if not matching:
        return {"error": {"code": INVALID_PARAMS, "message": f"Unknown tool: {name}"}}
    context = params.get("context")
    try:
        body = schemas.RunCreate.model_validate(
            {
                "assistant_id": matching[0].assistant_id,
                "input": arguments,
                "context": context if isinstance(context, dict) else {},
            }
        )
        run = await create(svc, body, None, access, announce=False)
        output = await await_output(svc, run)
    except errors.GraphrunError as exc:
        return _tool_error(exc.message)
    except ValidationError as exc:
        return {"error": {"code": INVALID_PARAMS, "message": str(exc)}}
    failure = output.get("__error__") if isinstance(output, dict) else None
    if isinstance(failure, dict):
        return _tool_error(str(failure.get("message") or failure.get("error") or "the run failed"))
    return {
        "result": {
            "content": [{"type": "text", "text": encoding.dumps_str(output)}],
            "structuredContent": output if isinstance(output, dict) else {"result": output},
        }
    }


def _tool_error(message: str) -> Json:
    """A failure of the tool itself: a result the model reads (``isError``), not a protocol error."""
    return {"result": {"isError": True, "content": [{"type": "text", "text": message}]}}


def _refused(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)
