"""The thread-stream protocol, as the official server serves it to ``client.threads.stream``, over its
two transports (what commands do and how a thread's events are read: ``api/_protocol.py``):

* ``POST /threads/{id}/commands``: one JSON command ``{"id": int, "method": str, "params": {...}}``, one
  JSON answer, ``{"type": "success", "id", "result", "meta"}`` or ``{"type": "error", "id", "error",
  "message"}``. Commands are stateless over HTTP.
* ``POST /threads/{id}/stream/events``: the thread's events as SSE, filtered by the body's
  ``channels``/``namespaces``/``depth``; ``since`` skips the events up to a ``seq`` the client already
  has. The connection is the subscription: it lasts until the client goes.
* ``WebSocket /threads/{id}/stream/events`` (the SDK's ``transport="websocket"``): every text frame is a
  command, answered by one frame; ``subscription.subscribe`` (with the stream body's filter and
  ``since``) starts sending the thread's events as JSON frames, ``subscription.unsubscribe`` stops
  them. The socket closes 1001 when the process drains. A socket the caller may not open (no
  credentials, another owner's thread) is closed before it is accepted, which a client sees as a 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from starlette.responses import JSONResponse, Response, StreamingResponse

from graphrun import errors
from graphrun.api import _protocol, sse
from graphrun.api._protocol import CommandError
from graphrun.api._resolve import unless_foreign
from graphrun.api.authz import Access, AccessDep, access_of
from graphrun.api.deps import Services, Svc
from graphrun.types import Json

router = APIRouter(tags=["threads"])

log = structlog.get_logger(__name__)

# WebSocket close codes: the server goes away (it drains); a subscription failed.
_GOING_AWAY = 1001
_INTERNAL_ERROR = 1011


# ---------------------------------------------------------------- commands (HTTP)


@router.post("/threads/{thread_id}/commands")
async def command(thread_id: uuid.UUID, request: Request, svc: Svc, access: AccessDep) -> Response:
    await unless_foreign(svc, access, str(thread_id))
    payload = await _json_body(request)
    if isinstance(payload, Response):
        return payload
    problem = _malformed(payload)
    if problem is not None:
        return JSONResponse(problem, status_code=400)
    return JSONResponse(await _answer(svc, access, str(thread_id), payload))


async def _json_body(request: Request) -> Any:
    """The request's JSON, or the 400 the official server answers for a body that is not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return JSONResponse({"detail": "Invalid JSON body"}, status_code=400)


def _malformed(payload: Any) -> Json | None:
    """The error envelope for a command without an integer id and a string method."""
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("id"), int)
        and not isinstance(payload.get("id"), bool)
        and isinstance(payload.get("method"), str)
    ):
        return None
    return _protocol.error_envelope(
        payload.get("id") if isinstance(payload, dict) else None,
        "invalid_argument",
        "Protocol commands must include an integer id and string method.",
    )


async def _answer(svc: Services, access: Access, thread_id: str, payload: Json) -> Json:
    command_id, method = payload["id"], payload["method"]
    try:
        if method not in _protocol.METHODS:
            raise CommandError("unknown_command", f"Unknown protocol command: {method}")
        params = _protocol.object_of(payload.get("params"))
        result = await _protocol.dispatch(svc, access, thread_id, method, params)
    except CommandError as exc:
        return _protocol.error_envelope(command_id, exc.code, exc.message)
    return _success(command_id, result)


def _success(command_id: int, result: Json) -> Json:
    return {"type": "success", "id": command_id, "result": result, "meta": {"applied_through_seq": 0}}


# ---------------------------------------------------------------- the event stream (SSE)


@router.post("/threads/{thread_id}/stream/events")
async def stream_events(thread_id: uuid.UUID, request: Request, svc: Svc, access: AccessDep) -> Response:
    found = await unless_foreign(svc, access, str(thread_id))
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    if not isinstance(body, dict):
        body = {}
    try:
        wanted = _protocol.stream_filter(body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    events = _protocol.thread_events(
        svc, str(thread_id), wanted, _protocol.since_of(body), None if found else access
    )
    return StreamingResponse(_sse(events), media_type="text/event-stream; charset=utf-8", headers=sse.HEADERS)


async def _sse(events: AsyncGenerator[Json | None, None]) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(events) as source:
        async for event in source:
            if event is None:
                yield sse.HEARTBEAT
            else:
                yield sse.frame(event["method"], orjson.dumps(event), str(event["seq"]))


# ---------------------------------------------------------------- commands and events (WebSocket)


@router.websocket("/threads/{thread_id}/stream/events")
async def stream_socket(websocket: WebSocket, thread_id: uuid.UUID) -> None:
    svc: Services = websocket.app.state.services
    access = access_of(websocket)
    try:
        found = await unless_foreign(svc, access, str(thread_id))
    except errors.NotFound:
        await websocket.close()  # before accepting: the client's handshake fails (403)
        return
    await websocket.accept()
    socket = _Socket(websocket, svc, access, str(thread_id), recheck=not found)
    try:
        await socket.serve()
    finally:
        await socket.stop()


class _Socket:
    """One WebSocket: its subscriptions (a task each, sending the thread's events through its filter)
    and the commands it receives. Frames go out one at a time (``_sending``)."""

    def __init__(
        self, websocket: WebSocket, svc: Services, access: Access, thread_id: str, *, recheck: bool
    ) -> None:
        self.websocket = websocket
        self.svc = svc
        self.access = access
        self.thread_id = thread_id
        self.recheck = recheck
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self._sending = asyncio.Lock()

    async def serve(self) -> None:
        drained = asyncio.create_task(self.svc.draining.wait(), name="protocol-socket-drain")
        try:
            while True:
                received = asyncio.create_task(self.websocket.receive(), name="protocol-socket-read")
                done, _ = await asyncio.wait({received, drained}, return_when=asyncio.FIRST_COMPLETED)
                if drained in done:
                    received.cancel()
                    await self.close(_GOING_AWAY, "server shutting down")
                    return
                message = received.result()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
                await self.send(await self.command(text))
        finally:
            drained.cancel()

    async def command(self, text: str) -> Json:
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _protocol.error_envelope(None, "invalid_argument", "Protocol commands must be valid JSON.")
        problem = _malformed(payload)
        if problem is not None:
            return problem
        method, params = payload["method"], _protocol.object_of(payload.get("params"))
        if method == "subscription.subscribe":
            return self.subscribe(payload["id"], params)
        if method == "subscription.unsubscribe":
            return await self.unsubscribe(payload["id"], params)
        return await _answer(self.svc, self.access, self.thread_id, payload)

    def subscribe(self, command_id: int, params: Json) -> Json:
        try:
            wanted = _protocol.stream_filter(params)
        except ValueError as exc:
            return _protocol.error_envelope(command_id, "invalid_argument", f"subscription.subscribe: {exc}")
        subscription_id = str(uuid.uuid4())
        events = _protocol.thread_events(
            self.svc,
            self.thread_id,
            wanted,
            _protocol.since_of(params),
            self.access if self.recheck else None,
        )
        self.subscriptions[subscription_id] = asyncio.create_task(
            self._pump(events), name=f"protocol-socket-subscription-{subscription_id}"
        )
        return _success(command_id, {"subscription_id": subscription_id, "replayed_events": 0})

    async def unsubscribe(self, command_id: int, params: Json) -> Json:
        subscription_id = params.get("subscription_id")
        if not isinstance(subscription_id, str):
            return _protocol.error_envelope(
                command_id, "invalid_argument", "subscription.unsubscribe requires a subscription_id."
            )
        task = self.subscriptions.pop(subscription_id, None)
        if task is None:
            return _protocol.error_envelope(
                command_id, "no_such_subscription", f"Unknown subscription: {subscription_id}"
            )
        await _cancelled(task)
        return _success(command_id, {})

    async def _pump(self, events: AsyncGenerator[Json | None, None]) -> None:
        try:
            async with contextlib.aclosing(events) as source:
                async for event in source:
                    if event is not None:  # keepalive: the WebSocket's own pings do that job
                        await self.send(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store or the bus failed: the client reconnects with `since`
            log.exception("protocol_socket_failed", thread_id=self.thread_id, error=type(exc).__name__)
            await self.close(_INTERNAL_ERROR, "thread stream failed")
            return
        if self.svc.draining.is_set():
            await self.close(_GOING_AWAY, "server shutting down")

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # already closed
            await self.websocket.close(code=code, reason=reason)

    async def send(self, frame: Json) -> None:
        async with self._sending:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client went away
                await self.websocket.send_text(orjson.dumps(frame).decode())

    async def stop(self) -> None:
        for task in self.subscriptions.values():
            await _cancelled(task)
        self.subscriptions.clear()


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
