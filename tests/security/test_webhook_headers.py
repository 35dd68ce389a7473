"""``GRAPHRUN_WEBHOOK_ALLOW_LOCAL`` (local development) lets a run's webhook reach loopback, and the
operator's ``webhooks.headers`` still go only to hosts ``webhooks.url.allowed_domains`` lists: here none,
so a webhook a client aims at its own receiver arrives without the operator's secret. Both modes."""

from __future__ import annotations

from pathlib import Path

from langgraph_sdk.client import LangGraphClient

from tests.acceptance.test_webhooks import Receiver

CONFIG = Path(__file__).resolve().parent / "webhooks.langgraph.json"
SERVER_ENV = {"GRAPHRUN_WEBHOOK_ALLOW_LOCAL": "true"}


async def test_a_clients_webhook_gets_no_operator_header(client: LangGraphClient, receiver: Receiver) -> None:
    run = await client.runs.create(None, "sleepy", input={"seconds": 0}, webhook=receiver.url)

    (delivery,) = await receiver.wait_for(run["run_id"])

    assert delivery.payload["status"] == "success"
    assert "authorization" not in delivery.headers
    assert "operator-webhook-secret" not in str(delivery.headers)
