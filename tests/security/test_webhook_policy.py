"""Webhooks as an attacker would aim them (issue 32), in both modes, with the default policy: a run's
``webhook`` on loopback, link-local (cloud metadata), private or unspecified addresses, in any spelling,
is refused when the run is created (422, nothing written); a host name is resolved when the webhook is
sent, and one that resolves to such an address is not called. A receiver of the test's own, on loopback,
tells whether anything arrived. (What the development setting allows, and where the configured headers
go: test_webhook_headers.py.)"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.acceptance.test_webhooks import Receiver
from tests.harness.sdk import as_dict
from tests.harness.waiting import eventually

CONFIG = Path(__file__).resolve().parent / "webhooks.langgraph.json"


def _loopback_name() -> str:
    """A host name other than ``localhost`` that resolves only to loopback addresses here (the machine's
    own name, usually, through /etc/hosts)."""
    name = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        found = set()
    if not found or not all(ipaddress.ip_address(a).is_loopback for a in found):
        pytest.skip(f"this machine's name {name!r} does not resolve to loopback only ({sorted(found)})")
    return name


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "2130706433",
        "0x7f.1",
        "0.0.0.0",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.10",
    ],
)
async def test_an_internal_address_is_refused_when_the_run_is_created(
    client: LangGraphClient, http: httpx.AsyncClient, receiver: Receiver, host: str
) -> None:
    before = await client.threads.count()

    answer = await http.post(
        "/runs/wait",
        json={
            "assistant_id": "sleepy",
            "input": {"seconds": 0},
            "webhook": f"http://{host}:{receiver.port}/",
        },
    )

    assert answer.status_code == 422, answer.text
    assert "GRAPHRUN_WEBHOOK_ALLOW_LOCAL" in answer.text or "address" in answer.text
    assert await client.threads.count() == before, "nothing was written"
    assert receiver.deliveries == []


async def test_a_name_that_resolves_to_loopback_is_not_called(
    target: Any, client: LangGraphClient, receiver: Receiver
) -> None:
    name = _loopback_name()
    webhook = f"http://{name}:{receiver.port}/hook"

    out = await client.runs.wait(None, "sleepy", input={"seconds": 0}, webhook=webhook)
    assert as_dict(out)["seen"] == {"slept": 0}
    (run,) = [r for r in await _runs_named_in_logs(target) if webhook in r]

    assert '"webhook_blocked"' in run.replace(" ", "")
    assert "resolves to 127." in run
    assert receiver.deliveries == []


async def _runs_named_in_logs(target: Any) -> list[str]:
    """The log lines about blocked webhooks (written when the worker sends, so waited for)."""

    async def lines() -> list[str]:
        return [line for line in target.logs().splitlines() if "webhook_blocked" in line]

    return await eventually(lines, bool, timeout_s=30, what="a webhook_blocked log line")
