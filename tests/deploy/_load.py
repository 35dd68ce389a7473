"""Clients of the deployment tests: SSE read as a client reads it, and a load of chat runs through nginx that
retries what a restart interrupts (tests/deploy/test_nginx.py on processes, test_compose.py on containers)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from langgraph_sdk import get_client

from tests.production._chat import chat_input, check_chat_messages


async def sse(response: httpx.Response) -> Any:
    """(arrival time, event, data, id) for each SSE event, read line by line as a client reads them."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "event" in fields:
                yield (
                    time.monotonic(),
                    fields["event"],
                    orjson.loads(fields.get("data", "null")),
                    fields.get("id"),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")


@dataclass
class Load:
    """Clients creating chat runs through nginx and joining them, retrying what a restart interrupts."""

    url: str
    steps: int = 3
    done: list[tuple[str, str]] = field(default_factory=list)  # (thread id, run id)
    retries: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def client_loop(self, n: int) -> None:
        async with get_client(url=self.url, api_key=None, timeout=60.0) as client:
            i = 0
            while not self.stop.is_set():
                thread = await self._retry(client.threads.create)
                text = f"client {n} run {i}"
                run = await self._retry(
                    client.runs.create,
                    thread["thread_id"],
                    "chat",
                    input=chat_input(text, self.steps, 0.2),
                    resend=False,
                )
                await self._retry(client.runs.join, thread["thread_id"], run["run_id"])
                self.done.append((thread["thread_id"], text))
                i += 1

    async def finish(self, clients: list[asyncio.Task[None]]) -> None:
        """Stops the clients (each ends its current run first) and raises what one of them raised."""
        self.stop.set()
        for result in await asyncio.gather(*clients, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result

    async def check_all_succeeded(self) -> int:
        """Every run the clients saw end is its thread's only run, ``success``, with each message once;
        returns how many runs the threads recorded."""
        runs_seen = 0
        async with get_client(url=self.url, api_key=None, timeout=60.0) as client:
            for thread_id, text in self.done:
                runs = await client.runs.list(thread_id)
                assert [r["status"] for r in runs] == ["success"], f"thread {thread_id}: {runs}"
                state = await client.threads.get_state(thread_id)
                check_chat_messages(state["values"], text, self.steps)
                runs_seen += len(runs)
        return runs_seen

    async def _retry(self, call: Any, *args: Any, resend: bool = True, **kwargs: Any) -> Any:
        """A call that a process going away interrupts, again for up to 60 s: after a 502/503/504 (no
        API took it, or one refused it while draining), and, for calls that cannot create anything
        twice (``resend``), after a cut connection or body too."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return await call(*args, **kwargs)
            except (httpx.TransportError, httpx.HTTPStatusError, orjson.JSONDecodeError) as exc:
                response = getattr(exc, "response", None)
                status = response.status_code if isinstance(exc, httpx.HTTPStatusError) and response else None
                retriable = status in (502, 503, 504) or (status is None and resend)
                if not retriable or time.monotonic() > deadline:
                    raise
                self.retries += 1
                await asyncio.sleep(0.2)
