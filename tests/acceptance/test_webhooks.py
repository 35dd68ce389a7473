"""Webhooks: when a run ends the server POSTs the run and its outcome to the run's ``webhook`` URL.

A small HTTP receiver runs inside the test process on 127.0.0.1 and records every request. This module's
server is started from a copy of the acceptance ``langgraph.json`` that adds ``webhooks.headers``, so that
the headers sent with every webhook can be checked too (with ``webhooks.url.allowed_domains`` naming the
receiver's host: the headers go only there), and with ``GRAPHRUN_WEBHOOK_ALLOW_LOCAL``, as local
development opts into webhooks on loopback. (The policy's refusals: tests/security/test_webhook_policy.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.embedded import Server, embedded
from tests.harness.ports import free_port
from tests.harness.sdk import as_dict, status_of
from tests.harness.waiting import eventually

from ._support import CONFIG, slow_steps_done

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(90)]

# A short run timeout, so that a run can end `timeout`; every other run here takes well under a second.
SERVER_ENV = {
    "GRAPHRUN_WEBHOOK_TIMEOUT_S": "1",
    "GRAPHRUN_RUN_TIMEOUT_S": "3",
    "GRAPHRUN_WEBHOOK_ALLOW_LOCAL": "true",
}
SECRET_HEADER = ("x-webhook-secret", "acceptance-secret")
T = TypeVar("T")
RUN_FIELDS = ("run_id", "thread_id", "assistant_id", "created_at", "metadata", "kwargs", "multitask_strategy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared test graphs, served with ``webhooks.headers`` set in langgraph.json."""
    base = tmp_path_factory.mktemp("graphrun-webhooks")
    raw = json.loads(CONFIG.read_text(encoding="utf-8"))
    graphs = {
        graph_id: str(CONFIG.parent / spec) if spec.startswith("./") else spec
        for graph_id, spec in raw["graphs"].items()
    }
    config = base / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                **raw,
                "graphs": graphs,
                "dependencies": [str(CONFIG.parent)],
                "webhooks": {
                    "headers": {SECRET_HEADER[0]: SECRET_HEADER[1]},
                    "url": {"allowed_domains": ["127.0.0.1"]},
                },
            }
        ),
        encoding="utf-8",
    )
    with embedded(base, config, SERVER_ENV) as srv:
        yield srv


# --- the receiver -------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return as_dict(json.loads(self.body))


@dataclass
class Receiver:
    """Records every request; answers each with the next of ``statuses`` (200 once they run out), or never
    answers at all when ``hang`` is set."""

    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _hanging: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._hanging:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def for_run(self, run_id: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.payload.get("run_id") == run_id]

    async def wait_for(self, run_id: str, count: int = 1, timeout_s: float = 30.0) -> list[Delivery]:
        return await eventually(
            _probe(lambda: self.for_run(run_id)),
            lambda found: len(found) >= count,
            timeout_s=timeout_s,
            what=f"{count} webhook(s) for {run_id}",
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            if not request_line:
                return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self._read_body(reader, headers)
            self.deliveries.append(Delivery(method, path, headers, body))
            if self.hang:
                self._hanging.append(writer)
                return
            status = self.statuses.pop(0) if self.statuses else 200
            writer.write(
                f"HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        if not self.hang:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readline()).split(b";")[0].strip(), 16):
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            return b"".join(chunks)
        return await reader.readexactly(int(headers.get("content-length", "0")))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


# --- checks -------------------------------------------------------------------------------------------------


def _probe(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """``read`` as the async probe that ``eventually`` polls."""

    async def probe() -> T:
        return read()

    return probe


def _at(value: object) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value)


async def _check_delivery(
    client: LangGraphClient, delivery: Delivery, thread_id: str, status: str
) -> dict[str, Any]:
    """The documented payload: the run as GET returns it, with its final status, times and values."""
    assert delivery.method == "POST"
    assert delivery.path == "/hook"
    assert delivery.headers["content-type"].startswith("application/json")
    assert delivery.headers.get(SECRET_HEADER[0]) == SECRET_HEADER[1]
    payload = delivery.payload
    run = dict(await client.runs.get(thread_id, payload["run_id"]))
    assert run["status"] == payload["status"] == status
    for name in RUN_FIELDS:
        assert payload[name] == run[name], name
    assert payload["thread_id"] == thread_id
    started, ended, sent = (_at(payload[k]) for k in ("run_started_at", "run_ended_at", "webhook_sent_at"))
    assert _at(payload["created_at"]) <= started <= ended <= sent
    return payload


async def _barrier(client: LangGraphClient, receiver: Receiver) -> None:
    """A run that ends after everything before it, and whose webhook has arrived: later counts are final."""
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=receiver.url)
    (run,) = await client.runs.list(thread_id)
    await receiver.wait_for(run["run_id"])


# --- tests --------------------------------------------------------------------------------------------------


async def test_a_successful_run_posts_once_with_its_final_values(
    client: LangGraphClient, receiver: Receiver
) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    await client.runs.wait(
        thread_id, "counter", input={"count": 0}, webhook=receiver.url, metadata={"tag": "ok"}
    )

    (run,) = await client.runs.list(thread_id)
    (delivery,) = await receiver.wait_for(run["run_id"])
    payload = await _check_delivery(client, delivery, thread_id, "success")
    assert payload["values"] == {"count": 2, "trail": ["a", "b"]}
    assert payload["metadata"]["tag"] == "ok"
    assert payload.get("error") is None
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 1


async def test_a_failed_run_posts_once_with_its_error(client: LangGraphClient, receiver: Receiver) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    await client.runs.wait(
        thread_id, "failing", input={"attempt": 1}, webhook=receiver.url, raise_error=False
    )

    (run,) = await client.runs.list(thread_id)
    (delivery,) = await receiver.wait_for(run["run_id"])
    payload = await _check_delivery(client, delivery, thread_id, "error")
    assert payload["error"] == {"error": "ValueError", "message": "boom"}
    assert payload["values"] == (await client.threads.get_state(thread_id))["values"] == {"attempt": 1}
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 1


async def test_a_run_stopped_at_an_interrupt_posts_once(client: LangGraphClient, receiver: Receiver) -> None:
    """``interrupt()`` ends the run ``success`` (the thread is what is interrupted); a resume posts again."""
    thread_id = (await client.threads.create())["thread_id"]

    await client.runs.wait(thread_id, "interrupting", input={"topic": "t"}, webhook=receiver.url)

    (run,) = await client.runs.list(thread_id)
    (delivery,) = await receiver.wait_for(run["run_id"])
    payload = await _check_delivery(client, delivery, thread_id, "success")
    assert payload["values"] == {"topic": "t", "prepared": True}
    assert (await client.threads.get(thread_id))["status"] == "interrupted"

    await client.runs.wait(thread_id, "interrupting", command={"resume": "yes"}, webhook=receiver.url)

    resumed = (await client.runs.list(thread_id))[0]
    (second,) = await receiver.wait_for(resumed["run_id"])
    assert (await _check_delivery(client, second, thread_id, "success"))["values"] == {
        "topic": "t",
        "prepared": True,
        "answer": "yes",
    }
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 1
    assert len(receiver.for_run(resumed["run_id"])) == 1


async def test_a_cancelled_run_posts_once_as_interrupted(client: LangGraphClient, receiver: Receiver) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(
        thread_id, "slow", input={"delay": 0.3, "steps": 100}, webhook=receiver.url
    )
    await slow_steps_done(client, thread_id, at_least=1)

    await client.runs.cancel(thread_id, run["run_id"], wait=True)

    (delivery,) = await receiver.wait_for(run["run_id"])
    payload = await _check_delivery(client, delivery, thread_id, "interrupted")
    assert payload["values"] == (await client.threads.get_state(thread_id))["values"]
    assert len(as_dict(payload["values"])["done"]) >= 1
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 1


async def test_a_run_that_times_out_posts_once_as_timeout(
    client: LangGraphClient, receiver: Receiver
) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    run = await client.runs.create(
        thread_id, "slow", input={"delay": 0.5, "steps": 100}, webhook=receiver.url
    )

    (delivery,) = await receiver.wait_for(run["run_id"])
    payload = await _check_delivery(client, delivery, thread_id, "timeout")
    assert payload["values"] == (await client.threads.get_state(thread_id))["values"]
    assert 1 <= len(as_dict(payload["values"])["done"]) < 100
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 1


async def test_a_stateless_run_posts_its_values_although_its_thread_is_deleted(
    client: LangGraphClient, receiver: Receiver
) -> None:
    out = await client.runs.wait(None, "counter", input={"count": 5}, webhook=receiver.url)

    assert out == {"count": 7, "trail": ["a", "b"]}
    await eventually(_probe(lambda: list(receiver.deliveries)), bool, what="the stateless run's webhook")
    (delivery,) = receiver.deliveries
    assert delivery.payload["status"] == "success"
    assert delivery.payload["values"] == {"count": 7, "trail": ["a", "b"]}


async def test_a_receiver_answering_500_twice_gets_three_posts(
    client: LangGraphClient, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    thread_id = (await client.threads.create())["thread_id"]

    out = await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=receiver.url)

    assert out == {"count": 2, "trail": ["a", "b"]}
    (run,) = await client.runs.list(thread_id)
    deliveries = await receiver.wait_for(run["run_id"], count=3, timeout_s=60)
    for delivery in deliveries:
        await _check_delivery(client, delivery, thread_id, "success")
    assert receiver.statuses == []
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 3  # the 200 ended the retries


async def test_a_receiver_that_always_fails_gets_the_first_post_and_three_retries(
    client: LangGraphClient, receiver: Receiver
) -> None:
    """GRAPHRUN_WEBHOOK_RETRIES defaults to 3: four POSTs in all, then the server gives up."""
    receiver.statuses = [500, 502, 503, 500]
    thread_id = (await client.threads.create())["thread_id"]

    await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=receiver.url)

    (run,) = await client.runs.list(thread_id)
    await receiver.wait_for(run["run_id"], count=4, timeout_s=60)
    assert receiver.statuses == []
    await _barrier(client, receiver)  # answered 200: a fifth POST of the first run would be counted
    assert len(receiver.for_run(run["run_id"])) == 4
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"


async def test_a_receiver_that_refuses_with_a_4xx_is_not_retried(
    client: LangGraphClient, receiver: Receiver
) -> None:
    receiver.statuses = [400]
    thread_id = (await client.threads.create())["thread_id"]

    await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=receiver.url)

    (run,) = await client.runs.list(thread_id)
    await receiver.wait_for(run["run_id"])
    await _barrier(client, receiver)
    assert len(receiver.for_run(run["run_id"])) == 1


async def test_an_unreachable_webhook_does_not_affect_the_run(
    server: Server, client: LangGraphClient
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    nobody = f"http://127.0.0.1:{free_port()}/hook"

    out = await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=nobody)

    assert out == {"count": 2, "trail": ["a", "b"]}
    (run,) = await client.runs.list(thread_id)
    assert run["status"] == "success"
    # The thread is free at once for the next run, while the webhook is still being retried or has failed.
    again = await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=nobody)
    assert again == {"count": 2, "trail": ["a", "b", "a", "b"]}
    assert [r["status"] for r in await client.runs.list(thread_id)] == ["success", "success"]
    # The failure is logged, naming the run.
    await eventually(
        _probe(server.logs),
        lambda logs: any("webhook" in line and run["run_id"] in line for line in logs.splitlines()),
        timeout_s=60,
        what="a log line about the failed webhook",
    )


async def test_a_receiver_that_never_answers_does_not_hold_the_thread(
    client: LangGraphClient, receiver: Receiver
) -> None:
    receiver.hang = True
    thread_id = (await client.threads.create())["thread_id"]

    out = await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=receiver.url)

    assert out == {"count": 2, "trail": ["a", "b"]}
    (run,) = await client.runs.list(thread_id)
    await receiver.wait_for(run["run_id"])  # the request is open and unanswered
    again = await client.runs.wait(thread_id, "counter", input={"count": 0})
    assert again == {"count": 2, "trail": ["a", "b", "a", "b"]}
    assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/hook", "file:///etc/passwd", "javascript:alert(1)", "127.0.0.1:8000/hook", "not a url"],
)
async def test_a_webhook_that_is_not_an_http_url_is_422_and_writes_nothing(
    client: LangGraphClient, url: str
) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.http.post(
            f"/threads/{thread_id}/runs",
            json={"assistant_id": "counter", "input": {"count": 0}, "webhook": url},
        )

    assert status_of(excinfo.value) == 422
    assert await client.runs.list(thread_id) == []
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_a_webhook_on_a_stateless_run_is_checked_too(client: LangGraphClient) -> None:
    before = await client.threads.count()

    with pytest.raises(httpx.HTTPStatusError) as excinfo:
        await client.runs.wait(None, "counter", input={"count": 0}, webhook="ftp://127.0.0.1/hook")

    assert status_of(excinfo.value) == 422
    assert await client.threads.count() == before


async def test_a_secret_in_the_runs_config_reaches_the_receiver_masked(
    client: LangGraphClient, receiver: Receiver
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    secret = "hunter2-planted-in-config"
    config: Any = {"configurable": {"x-auth-token": secret, "user_tag": "kept"}}

    await client.runs.wait(thread_id, "counter", input={"count": 0}, webhook=receiver.url, config=config)

    (run,) = await client.runs.list(thread_id)
    (delivery,) = await receiver.wait_for(run["run_id"])
    payload = delivery.payload
    assert payload["status"] == "success"
    assert secret not in json.dumps(payload)
    assert payload["kwargs"]["config"]["configurable"]["user_tag"] == "kept"
