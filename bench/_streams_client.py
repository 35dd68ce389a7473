"""The client side of ``bench/streams.py``: one stream of the streaming graph read through
``langgraph_sdk``'s HTTP client and checked event by event (``Stream``, ``run_stream``), and the
``Client`` that counts the requests made."""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

ASSISTANT_ID = "streaming"
STREAM_MODE: list[Any] = ["messages-tuple", "values"]
INPUT: dict[str, Any] = {"messages": [{"role": "human", "content": "go"}]}
EVENTS_PER_STREAM = 23  # metadata, values (input), 20 x messages, values (final)

CONNECT_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 120.0  # longest silence within one stream (the server sends a heartbeat every 5 s)


@dataclass
class Stream:
    """What one stream delivered. Times are seconds since its request was started."""

    events: int = 0
    first_event_s: float | None = None
    first_token_s: float | None = None
    last_event_s: float | None = None
    server_closed_s: float | None = None
    closed_s: float | None = None
    run_id: str | None = None
    metadata_ok: bool = False
    tokens: list[str] = field(default_factory=list)
    final: Any = None
    error: str | None = None
    unexpected: list[str] = field(default_factory=list)

    def lost(self, expected: Sequence[str]) -> int:
        """Events that never arrived: the metadata, tokens, the final values."""
        missing_tokens = max(len(expected) - len(self.tokens), 0)
        return (not self.metadata_ok) + missing_tokens + (not final_ok(self.final, "".join(expected)))

    def problems(self, expected: Sequence[str]) -> list[str]:
        """Everything wrong with this stream; empty when it is exactly what the graph streams."""
        found = [f"error: {self.error}"] if self.error else []
        if not self.metadata_ok:
            found.append("no metadata event first")
        if self.tokens != list(expected):
            found.append(f"tokens {self.tokens!r} (want {len(expected)})")
        if not final_ok(self.final, "".join(expected)):
            found.append(f"final values {str(self.final)[:200]}")
        if self.events != EVENTS_PER_STREAM:
            found.append(f"{self.events} events (want {EVENTS_PER_STREAM})")
        return found + [f"unexpected event {name}" for name in self.unexpected]


def final_ok(values: Any, text: str) -> bool:
    """The last ``values`` event holds the human input and the model's whole answer."""
    if not isinstance(values, dict) or not isinstance(values.get("messages"), list):
        return False
    messages = values["messages"]
    return len(messages) == 2 and messages[-1].get("type") == "ai" and messages[-1].get("content") == text


def record(stream: Stream, event: str, data: Any, now: float) -> None:
    """Fold one SSE event into ``stream``."""
    stream.events += 1
    stream.last_event_s = now
    if event == "metadata":
        stream.first_event_s = stream.first_event_s or now
        stream.metadata_ok = stream.events == 1 and isinstance(data, dict) and "run_id" in data
        stream.run_id = str(data["run_id"]) if stream.metadata_ok else None
    elif event == "messages":
        if stream.first_token_s is None:
            stream.first_token_s = now
        stream.tokens.append(token_of(data))
    elif event == "values":
        stream.final = data
    else:
        stream.unexpected.append(f"{event}: {str(data)[:200]}")


def token_of(data: Any) -> str:
    """The text of a `messages` event's `[chunk, metadata]`; a placeholder when it is not a model chunk."""
    chunk = data[0] if isinstance(data, list) and data else None
    if (
        isinstance(chunk, dict)
        and chunk.get("type") == "AIMessageChunk"
        and isinstance(chunk.get("content"), str)
    ):
        return str(chunk["content"])
    return f"(not a token: {str(data)[:100]})"


@dataclass
class OpenStreams:
    """Streams between their first event and their close: how many now, and the most at once."""

    now: int = 0
    peak: int = 0

    def opened(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)


async def run_stream(client: Client, n: int, thread_id: str, open_streams: OpenStreams) -> Stream:
    """Stream one run on ``thread_id`` and record every event; failures are recorded, not raised.

    The server ends a stream by closing it (no ``end`` event); the SDK then asks for the run's status
    before its iterator ends. ``server_closed_s`` is when that request went out.
    """
    stream = Stream()
    start = time.perf_counter()
    parts = client.sdk(n).runs.stream(thread_id, ASSISTANT_ID, input=INPUT, stream_mode=STREAM_MODE)
    try:
        async for part in parts:
            if stream.events == 0:
                open_streams.opened()
            record(stream, part.event, part.data, time.perf_counter() - start)
    except Exception as exc:  # any failure is this stream's result; it is counted and fails the bench
        stream.error = f"{type(exc).__name__}: {exc}"
    stream.closed_s = time.perf_counter() - start
    if stream.events:
        open_streams.now -= 1
    checked = client.requests.status_checks.pop(f"/threads/{thread_id}/runs/{stream.run_id}", None)
    stream.server_closed_s = None if checked is None else checked - start
    return stream


# --- the client -----------------------------------------------------------------------------------------


class Requests:
    """An httpx request hook that counts the SDK's requests by kind (a reconnect is a stream that dropped)
    and remembers when each run-status check went out (``time.perf_counter()``, by URL path)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.status_checks: dict[str, float] = {}

    async def __call__(self, request: httpx.Request) -> None:
        path = request.url.path
        if request.method == "POST" and path.endswith("/runs/stream"):
            self.counts["stream"] += 1
        elif request.method == "GET" and path.endswith("/stream"):
            self.counts["reconnect"] += 1
        elif request.method == "POST" and path == "/threads":
            self.counts["threads.create"] += 1
        elif request.method == "GET" and "/runs/" in path:
            self.counts["status check"] += 1
            self.status_checks[path] = time.perf_counter()
        else:
            self.counts[f"{request.method} other"] += 1


class Client:
    """SDK clients that share the load of the streams, and the hook that watches their requests.

    One ``httpx.AsyncClient`` pool scans all of its connections several times per request and response
    (httpcore 1.0), so a single pool of 500 connections costs the client more CPU than the server uses;
    ``pool_size`` connections per client keeps that cost small.
    """

    def __init__(self, url: str, connections: int, pool_size: int) -> None:
        self.requests = Requests()
        sizes = [min(pool_size, connections - start) for start in range(0, connections, pool_size)]
        self.pool = [self._sdk(url, size) for size in sizes]

    def _sdk(self, url: str, connections: int) -> LangGraphClient:
        """An SDK client whose pool really holds ``connections`` streams at once.

        ``get_client`` gives httpx's default limits (100 connections, 5 s pool timeout): stream 101 would
        wait for a free connection and fail after 5 s. No retries either: a refused connection is an error
        here, not a silent second try.
        """
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        http = httpx.AsyncClient(
            base_url=url,
            transport=httpx.AsyncHTTPTransport(limits=limits, retries=0),
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S),
            event_hooks={"request": [self.requests]},
        )
        return LangGraphClient(http)

    def sdk(self, n: int) -> LangGraphClient:
        """The SDK client for stream number ``n`` (round robin)."""
        return self.pool[n % len(self.pool)]

    async def aclose(self) -> None:
        for sdk in self.pool:
            await sdk.aclose()
