"""``graphrun alert-relay`` as Alertmanager meets it: a real relay process, posted Alertmanager's webhook
payload, passing it on to local receivers standing in for Slack, Feishu and DingTalk, which check the exact
payloads, Feishu's and DingTalk's signatures, and the retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.ports import free_port
from tests.observability._receivers import Receiver

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

FEISHU_SECRET = "feishu-signing-secret"
DINGTALK_SECRET = "SECdingtalk0123456789"
PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="GraphrunCircuitOpen"}',
    "status": "firing",
    "receiver": "graphrun-relay",
    "groupLabels": {"alertname": "GraphrunCircuitOpen"},
    "commonLabels": {"alertname": "GraphrunCircuitOpen", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "GraphrunCircuitOpen",
                "severity": "critical",
                "provider": "openai",
                "model": "gpt-4o",
            },
            "annotations": {
                "summary": "model openai/gpt-4o: circuit open, its calls fail fast",
                "description": "A worker's circuit breaker for this model has been open for a minute.",
            },
            "startsAt": "2026-12-06T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "0123456789abcdef",
        }
    ],
}
TITLE = "[FIRING:1] GraphrunCircuitOpen"
BLOCK = (
    "model openai/gpt-4o: circuit open, its calls fail fast (critical, firing)\n"
    "A worker's circuit breaker for this model has been open for a minute.\n"
    "model=gpt-4o, provider=openai\n"
    "since 2026-12-06T10:00:00Z"
)


@dataclass
class Relay:
    url: str
    slack: Receiver
    feishu: Receiver
    dingtalk: Receiver
    log: Path

    def reset(self) -> None:
        for receiver in (self.slack, self.feishu, self.dingtalk):
            receiver.requests.clear()
            receiver.answers.clear()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    receivers = [Receiver().start() for _ in range(3)]
    slack, feishu, dingtalk = receivers
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env.update(
        {
            "GRAPHRUN_ALERT_SLACK_WEBHOOK_URL": f"{slack.url}/services/T000/B000/XXXX",
            "GRAPHRUN_ALERT_FEISHU_WEBHOOK_URL": f"{feishu.url}/open-apis/bot/v2/hook/abc",
            "GRAPHRUN_ALERT_FEISHU_SECRET": FEISHU_SECRET,
            "GRAPHRUN_ALERT_DINGTALK_WEBHOOK_URL": f"{dingtalk.url}/robot/send?access_token=tok123",
            "GRAPHRUN_ALERT_DINGTALK_SECRET": DINGTALK_SECRET,
            "GRAPHRUN_ALERT_RETRIES": "2",
        }
    )
    log = tmp_path_factory.mktemp("relay") / "relay.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graphrun", "alert-relay", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"relay did not start\n{log.read_text()}"
            time.sleep(0.1)
        yield Relay(url, slack, feishu, dingtalk, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for receiver in receivers:
            receiver.stop()


def _json(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.requests]


def test_one_notification_reaches_every_target_in_its_own_format(relay: Relay) -> None:
    relay.reset()
    relay.feishu.answers.append((200, b'{"code": 0, "msg": "success"}'))
    relay.dingtalk.answers.append((200, b'{"errcode": 0, "errmsg": "ok"}'))
    started = time.time()

    answer = httpx.post(f"{relay.url}/alerts", json=PAYLOAD, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sent": ["slack", "feishu", "dingtalk"]}
    assert [r.path for r in relay.slack.requests] == ["/services/T000/B000/XXXX"]
    assert _json(relay.slack) == [{"text": f"*{TITLE}*\n\n{BLOCK}"}]

    (feishu,) = _json(relay.feishu)
    timestamp = feishu.pop("timestamp")
    assert abs(int(timestamp) - started) < 60
    expected_sign = base64.b64encode(
        hmac.new(f"{timestamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert feishu.pop("sign") == expected_sign
    assert feishu == {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": TITLE}, "template": "red"},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": BLOCK}}],
        },
    }

    (request,) = relay.dingtalk.requests
    path, _, query = request.path.partition("?")
    params = dict(urllib.parse.parse_qsl(query))
    assert path == "/robot/send"
    assert params["access_token"] == "tok123"
    assert abs(int(params["timestamp"]) / 1000 - started) < 60
    digest = hmac.new(
        DINGTALK_SECRET.encode(), f"{params['timestamp']}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
    ).digest()
    assert params["sign"] == base64.b64encode(digest).decode(), "DingTalk's signature, URL-decoded"
    assert json.loads(request.body) == {
        "msgtype": "markdown",
        "markdown": {"title": TITLE, "text": f"### {TITLE}\n\n" + BLOCK.replace("\n", "  \n")},
    }


def test_a_resolved_notification_is_green_and_counts_no_firing(relay: Relay) -> None:
    relay.reset()
    resolved = {**PAYLOAD, "status": "resolved", "alerts": [{**PAYLOAD["alerts"][0], "status": "resolved"}]}

    answer = httpx.post(f"{relay.url}/alerts/feishu", json=resolved, timeout=30)

    assert answer.status_code == 200, answer.text
    (feishu,) = _json(relay.feishu)
    assert feishu["card"]["header"] == {
        "title": {"tag": "plain_text", "content": "[RESOLVED] GraphrunCircuitOpen"},
        "template": "green",
    }
    assert relay.slack.requests == [], "only the target named"
    assert relay.dingtalk.requests == []


def test_server_errors_and_rate_limits_are_retried_until_taken(relay: Relay) -> None:
    relay.reset()
    relay.slack.answers += [(500, b"oops"), (503, b"busy")]
    relay.dingtalk.answers += [
        (200, b'{"errcode": 130101, "errmsg": "send too fast"}'),
        (200, b'{"errcode": 0, "errmsg": "ok"}'),
    ]

    slack = httpx.post(f"{relay.url}/alerts/slack", json=PAYLOAD, timeout=60)
    dingtalk = httpx.post(f"{relay.url}/alerts/dingtalk", json=PAYLOAD, timeout=60)

    assert slack.status_code == 200, slack.text
    assert len(relay.slack.requests) == 3, "two failures, then the one that was taken"
    assert dingtalk.status_code == 200, dingtalk.text
    assert len(relay.dingtalk.requests) == 2
    first, second = (dict(urllib.parse.parse_qsl(r.path.partition("?")[2])) for r in relay.dingtalk.requests)
    assert first["timestamp"] <= second["timestamp"], "each attempt is signed afresh"


def test_a_refusal_is_not_retried_and_alertmanager_is_told_with_a_502(relay: Relay) -> None:
    relay.reset()
    relay.feishu.answers.append(
        (200, b'{"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}')
    )
    relay.slack.answers += [(500, b"down")] * 3

    answer = httpx.post(f"{relay.url}/alerts", json=PAYLOAD, timeout=60)

    assert answer.status_code == 502, answer.text
    body = answer.json()
    assert body["sent"] == ["dingtalk"]
    assert "code 19021" in body["failed"]["feishu"]
    assert "500" in body["failed"]["slack"]
    assert len(relay.feishu.requests) == 1, "a refusal is final"
    assert len(relay.slack.requests) == 3, "1 + GRAPHRUN_ALERT_RETRIES attempts"
    log = relay.log.read_text()
    assert "alert_not_delivered" in log
    assert "httpx" in log, "the HTTP client's own lines are there"
    assert "XXXX" not in log, "webhook URLs are credentials: masked in the log, the client's lines too"
    assert "tok123" not in log


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/alerts", {"status": "firing"}, 400, "no 'alerts' list"),
        ("/alerts", ["not", "an", "object"], 400, "not a JSON object"),
        ("/alerts/teams", PAYLOAD, 404, "unknown target 'teams'"),
    ],
)
def test_bad_notifications_are_refused_clearly_and_nothing_is_sent(
    relay: Relay, path: str, body: Any, status: int, detail: str
) -> None:
    relay.reset()

    answer = httpx.post(f"{relay.url}{path}", json=body, timeout=30)

    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert relay.slack.requests == relay.feishu.requests == relay.dingtalk.requests == []
