"""``Webhooks``: what is posted, how often, and that failures stay in the log.

The receiver is a real HTTP server on loopback (asyncio streams), answering from a script of status codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from graphrun import webhooks as webhooks_module
from graphrun.models import Run, RunOutcome, RunRequest, utcnow
from graphrun.settings import Settings
from graphrun.webhooks import UrlPolicy, Webhooks

BOUND_S = 5.0


@dataclass
class Receiver:
    """Answers each POST with the next status of ``statuses`` (200 once they run out)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    location: str = ""  # where a 3xx sends the sender

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers["content-length"]))
        self.received.append((headers, json.loads(body)))
        status = self.statuses.pop(0) if self.statuses else 200
        location = f"location: {self.location}\r\n" if 300 <= status < 400 else ""
        writer.write(
            f"HTTP/1.1 {status} X\r\n{location}content-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        self.arrived.set()


@contextlib.asynccontextmanager
async def serving(host: str, path: str) -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1, whose URL names it ``host``."""
    r = Receiver()
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    r.url = f"http://{host}:{server.sockets[0].getsockname()[1]}{path}"
    async with server:
        yield r


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving("127.0.0.1", "/hook") as r:
        yield r


@pytest.fixture
async def elsewhere() -> AsyncIterator[Receiver]:
    """A second receiver, named ``localhost`` in its URL (a loopback host by name)."""
    async with serving("localhost", "/elsewhere") as r:
        yield r


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks_module, "first_backoff_s", 0.01)


def finished(url: str) -> tuple[Run, RunOutcome]:
    now = utcnow()
    run = Run(
        run_id="r-1",
        thread_id="t-1",
        assistant_id="a-1",
        graph_id="g",
        status="running",
        metadata={"k": "v"},
        multitask_strategy="enqueue",
        request=RunRequest(input={"x": 1}, webhook=url),
        created_at=now,
        updated_at=now,
        attempt=1,
    )
    error = {"error": "ValueError", "message": "boom"}
    return run, RunOutcome("error", {"__error__": error}, "error", {"count": 2}, {}, error)


async def deliver(receiver: Receiver, settings: Settings, url: str | None = None, **kwargs: Any) -> None:
    """Send one finished run's webhook. The receivers are on loopback, which a test opts into as local
    development does (``GRAPHRUN_WEBHOOK_ALLOW_LOCAL``) unless it gives a policy of its own."""
    run, outcome = finished(url or receiver.url)
    kwargs.setdefault("policy", UrlPolicy.of(None, allow_local=True))
    async with Webhooks(settings, **kwargs) as hooks:
        hooks.send(run, outcome, started_at=run.updated_at)


async def test_a_finished_run_is_posted_once_with_the_official_fields(receiver: Receiver) -> None:
    trusted = UrlPolicy.of({"allowed_domains": ["127.0.0.1"]})
    await deliver(receiver, Settings(), headers={"Authorization": "Bearer t"}, policy=trusted)

    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert headers["authorization"] == "Bearer t"
    assert headers["content-type"] == "application/json"
    assert body["run_id"] == "r-1"
    assert body["status"] == "error"
    assert body["values"] == {"count": 2}
    assert body["error"] == {"error": "ValueError", "message": "boom"}
    assert body["kwargs"]["input"] == {"x": 1}
    assert {"run_started_at", "run_ended_at", "webhook_sent_at", "created_at"} <= set(body)


async def test_5xx_is_retried_until_it_succeeds(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]

    await deliver(receiver, Settings(webhook_retries=3))

    assert len(receiver.received) == 3


async def test_retries_stop_at_the_setting(receiver: Receiver) -> None:
    receiver.statuses = [500] * 10

    await deliver(receiver, Settings(webhook_retries=2))

    assert len(receiver.received) == 3


async def test_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [400]

    await deliver(receiver, Settings(webhook_retries=3))

    assert len(receiver.received) == 1


async def test_allowed_fields_filter_the_payload(receiver: Receiver) -> None:
    await deliver(receiver, Settings(), fields=frozenset({"run_id", "status"}))

    assert receiver.received[0][1] == {"run_id": "r-1", "status": "error"}


async def test_an_unreachable_receiver_is_logged_not_raised(receiver: Receiver) -> None:
    async with asyncio.timeout(BOUND_S):
        await deliver(receiver, Settings(webhook_retries=1), url="http://127.0.0.1:9/nothing-listens")

    assert receiver.received == []


async def test_loopback_is_not_reached_by_default(receiver: Receiver) -> None:
    async with asyncio.timeout(BOUND_S):
        await deliver(receiver, Settings(), policy=UrlPolicy.of(None))

    assert receiver.received == []


async def test_the_configured_headers_go_only_to_an_allowed_domain(receiver: Receiver) -> None:
    await deliver(receiver, Settings(), headers={"Authorization": "Bearer t", "x-secret": "s"})

    assert len(receiver.received) == 1
    headers, _ = receiver.received[0]
    assert "authorization" not in headers
    assert "x-secret" not in headers


async def test_a_redirect_is_checked_like_the_first_request(receiver: Receiver, elsewhere: Receiver) -> None:
    """The operator trusts 127.0.0.1 (``allowed_domains``); it redirects to ``localhost``, which the
    default policy refuses: the redirect is not followed."""
    receiver.statuses, receiver.location = [307], elsewhere.url
    trusted = UrlPolicy.of({"allowed_domains": ["127.0.0.1"]})

    async with asyncio.timeout(BOUND_S):
        await deliver(receiver, Settings(), headers={"x-secret": "s"}, policy=trusted)

    assert [h.get("x-secret") for h, _ in receiver.received] == ["s"]
    assert elsewhere.received == []


async def test_a_redirect_to_another_host_carries_no_configured_header(
    receiver: Receiver, elsewhere: Receiver
) -> None:
    receiver.statuses, receiver.location = [307], elsewhere.url
    trusted = UrlPolicy.of({"allowed_domains": ["127.0.0.1"]}, allow_local=True)

    await deliver(receiver, Settings(), headers={"x-secret": "s"}, policy=trusted)

    assert len(elsewhere.received) == 1
    assert "x-secret" not in elsewhere.received[0][0]
