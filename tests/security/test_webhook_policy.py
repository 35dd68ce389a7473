"""Webhooks as an attacker would aim them (issue 32), in both modes, with the default policy: a run's
``webhook`` on loopback, link-local (cloud metadata), private or unspecified addresses, in any spelling,
and a name that resolves to one (or does not resolve), is refused when the run is created (422, nothing
written), as the official server refuses it. (The name is resolved again as the webhook is sent, and the
connection pinned to the address checked: tests/unit/test_http_policies.py.) A receiver of the test's
own, on loopback, tells whether anything arrived. (What the development setting allows, and where the
configured headers go: test_webhook_headers.py.)"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.acceptance.test_webhooks import Receiver

CONFIG = Path(__file__).resolve().parent / "webhooks.langgraph.json"


def _loopback_name() -> str:
    """A host name other than ``localhost`` (which the name list refuses before resolving) that resolves
    only to loopback addresses here: the machine's own name, usually, through /etc/hosts. The unit test
    of the policy covers resolution with a resolver of its own; this one needs a real name."""
    name = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        found = set()
    if not found or not all(ipaddress.ip_address(a).is_loopback for a in found):
        pytest.skip(
            f"no name here resolves to loopback only, other than localhost: this machine's name {name!r} "
            f"resolves to {sorted(found) or 'nothing'} (resolution is covered by "
            "tests/unit/test_http_policies.py with a resolver of its own)"
        )
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


async def test_a_name_that_resolves_to_loopback_is_refused_when_the_run_is_created(
    client: LangGraphClient, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await _refused(
        client, http, receiver, f"http://{_loopback_name()}:{receiver.port}/hook", "resolves to 127."
    )


async def test_a_name_that_does_not_resolve_is_refused_when_the_run_is_created(
    client: LangGraphClient, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """``.invalid`` never resolves (RFC 6761)."""
    await _refused(client, http, receiver, "http://nobody.invalid/hook", "does not resolve")


async def test_a_kubernetes_service_name_is_refused_when_the_run_is_created(
    client: LangGraphClient, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await _refused(client, http, receiver, "http://api.default.svc.cluster.local/hook", "Kubernetes")


async def _refused(
    client: LangGraphClient, http: httpx.AsyncClient, receiver: Receiver, webhook: str, problem: str
) -> None:
    before = await client.threads.count()

    for path, body in (
        ("/runs/wait", {"assistant_id": "sleepy", "input": {"seconds": 0}}),
        ("/runs/crons", {"assistant_id": "sleepy", "schedule": "* * * * *", "input": {"seconds": 0}}),
    ):
        answer = await http.post(path, json={**body, "webhook": webhook})

        assert answer.status_code == 422, answer.text
        assert problem in answer.text
    assert await client.threads.count() == before, "nothing was written"
    crons = await http.post("/runs/crons/search", json={})
    assert crons.json() == [], "no cron was written"
    assert receiver.deliveries == []
