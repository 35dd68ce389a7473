"""Server-sent events framed as the official server frames them (CRLF lines, ``: heartbeat`` comments).

Written by hand rather than with sse-starlette: the framing is a few lines, and we need exact control of
the event ids (sent only for resumable runs) and of what happens when the client goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from graphrun import encoding

HEARTBEAT = b": heartbeat\r\n\r\n"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    parts = [b"event: ", event.encode(), b"\r\ndata: ", data, b"\r\n"]
    if event_id is not None:
        parts += [b"id: ", event_id.encode(), b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


def frame_json(event: str, data: object) -> bytes:
    return frame(event, encoding.dumps(data))


def response(body: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(
        body, media_type="text/event-stream; charset=utf-8", headers={**HEADERS, **headers}
    )
