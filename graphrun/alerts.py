"""``graphrun alert-relay``: Alertmanager's webhook, passed on to Slack, Feishu and DingTalk in each one's
own message format, signed where they sign, with retries.

Alertmanager can post to a webhook but knows neither Feishu's nor DingTalk's bots (their message shapes,
their signatures, their "200 but refused" answers), so this small HTTP service does:

- ``POST /alerts``: the notification goes to every target whose URL is set; ``POST /alerts/<target>``
  (``slack``, ``feishu``, ``dingtalk``) to that one only;
- Slack incoming webhooks get ``{"text": …}`` (mrkdwn); Feishu custom bots an interactive card, with
  ``timestamp`` and ``sign`` (base64 HMAC-SHA256 keyed by ``"<timestamp>\\n<secret>"`` over nothing) when
  a secret is set; DingTalk robots a markdown message, the URL carrying ``timestamp`` (ms) and ``sign``
  (base64 HMAC-SHA256 of ``"<timestamp>\\n<secret>"`` keyed by the secret) when a secret is set;
- a 5xx, a 429, a connection error, or a bot's "too many messages" code is tried again
  (``GRAPHRUN_ALERT_RETRIES`` times, backing off); the answer is 200 when every target took the
  notification, else 502 naming what failed, so that Alertmanager retries in its turn.

Written here rather than taken from a library: the maintained Alertmanager bridges for these bots are
Go or Java services, one per chat system; this is three payload shapes and two signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from graphrun import redact
from graphrun.resilience import retrying
from graphrun.settings import Settings
from graphrun.types import Json

log = structlog.get_logger("graphrun.alerts")

TARGETS = ("slack", "feishu", "dingtalk")
# Bots answer 200 with an error code; these mean "too many messages, slow down".
_RATE_LIMITED = {"feishu": {9499, 11232, 11233}, "dingtalk": {130101, 410100}}


class Refused(Exception):
    """A target did not take the notification; ``status_code`` 429 when it asked to slow down."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Notice:
    """What a notification says, before any target's format: a title and one block per alert."""

    firing: bool
    title: str
    blocks: list[str]


def notice(payload: Json) -> Notice:
    """Alertmanager's webhook payload (version 4) as a title and a block of lines per alert."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise ValueError("not an Alertmanager notification: no 'alerts' list")
    status = str(payload.get("status") or "firing")
    common = payload.get("commonLabels") or {}
    group = payload.get("groupLabels") or {}
    name = common.get("alertname") or group.get("alertname") or "graphrun alert"
    firing = status == "firing"
    count = sum(1 for a in alerts if a.get("status", status) == "firing")
    title = f"[{status.upper()}{f':{count}' if firing else ''}] {name}"
    blocks = []
    for alert in alerts:
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        summary = annotations.get("summary") or labels.get("alertname") or name
        lines = [f"{summary} ({labels.get('severity', 'unknown')}, {alert.get('status', status)})"]
        if annotations.get("description"):
            lines.append(str(annotations["description"]))
        rest = {k: v for k, v in sorted(labels.items()) if k not in ("alertname", "severity")}
        if rest:
            lines.append(", ".join(f"{k}={v}" for k, v in rest.items()))
        if alert.get("startsAt"):
            lines.append(f"since {alert['startsAt']}")
        blocks.append("\n".join(redact.text(line) for line in lines))
    return Notice(firing, title, blocks)


# ---------------------------------------------------------------- each target's format


def slack_message(n: Notice) -> Json:
    return {"text": f"*{n.title}*\n\n" + "\n\n".join(n.blocks)}


def feishu_message(n: Notice, secret: str = "", now: Callable[[], float] = time.time) -> Json:
    body: Json = {
        "msg_type": "interactive",
        "card": {
            "header": {
                "title": {"tag": "plain_text", "content": n.title},
                "template": "red" if n.firing else "green",
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "\n\n".join(n.blocks)}}],
        },
    }
    if secret:
        timestamp = str(int(now()))
        body = {"timestamp": timestamp, "sign": feishu_sign(timestamp, secret), **body}
    return body


def feishu_sign(timestamp: str, secret: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_message(n: Notice) -> Json:
    text = f"### {n.title}\n\n" + "\n\n".join(block.replace("\n", "  \n") for block in n.blocks)
    return {"msgtype": "markdown", "markdown": {"title": n.title, "text": text}}


def dingtalk_sign(timestamp_ms: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_url(url: str, secret: str = "", now: Callable[[], float] = time.time) -> str:
    if not secret:
        return url
    timestamp = str(int(now() * 1000))
    query = urllib.parse.urlencode({"timestamp": timestamp, "sign": dingtalk_sign(timestamp, secret)})
    return f"{url}{'&' if '?' in url else '?'}{query}"


# ---------------------------------------------------------------- sending


class Relay:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http
        self._urls = {
            "slack": settings.alert_slack_webhook_url,
            "feishu": settings.alert_feishu_webhook_url,
            "dingtalk": settings.alert_dingtalk_webhook_url,
        }

    @property
    def configured(self) -> list[str]:
        return [t for t in TARGETS if self._urls[t]]

    async def send(self, target: str, n: Notice) -> None:
        """Post ``n`` to ``target`` in its format, retrying what is worth it; raises when it is refused."""
        send = retrying(attempts=self._settings.alert_retries + 1, initial=0.5, cap=10.0)(self._post)
        await send(target, n)

    async def _post(self, target: str, n: Notice) -> None:
        settings, url = self._settings, self._urls[target]
        if target == "slack":
            body = slack_message(n)
        elif target == "feishu":
            body = feishu_message(n, settings.alert_feishu_secret)
        else:
            body = dingtalk_message(n)
            url = dingtalk_url(url, settings.alert_dingtalk_secret)
        response = await self._http.post(url, json=body, timeout=settings.alert_timeout_s)
        response.raise_for_status()  # an HTTPStatusError: a 5xx or 429 is retried, another 4xx is not
        if target == "slack":
            return
        answer = response.json() if response.content else {}
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code:
            message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
            status = 429 if code in _RATE_LIMITED[target] else 400
            raise Refused(f"{target} refused the message: code {code} {message}".strip(), status)


def create_app(settings: Settings) -> FastAPI:
    http = httpx.AsyncClient()
    relay = Relay(settings, http)
    app = FastAPI(title="graphrun alert relay", docs_url=None, redoc_url=None, openapi_url=None)
    app.router.add_event_handler("shutdown", http.aclose)

    @app.get("/ok")
    async def ok() -> Json:
        return {"ok": True, "targets": relay.configured}

    async def deliver(request: Request, targets: list[str]) -> JSONResponse:
        try:
            payload: Any = await request.json()
            if not isinstance(payload, dict):
                raise ValueError("the body is not a JSON object")
            n = notice(payload)
        except ValueError as exc:
            return JSONResponse({"detail": f"not an Alertmanager notification: {exc}"}, 400)
        failed: dict[str, str] = {}
        for target in targets:
            try:
                await relay.send(target, n)
            except Exception as exc:
                failed[target] = redact.text(f"{type(exc).__name__}: {exc}")
                log.warning("alert_not_delivered", target=target, title=n.title, error=failed[target])
            else:
                log.info("alert_delivered", target=target, title=n.title)
        sent = [t for t in targets if t not in failed]
        if failed:
            return JSONResponse({"sent": sent, "failed": failed}, 502)
        return JSONResponse({"sent": sent})

    @app.post("/alerts")
    async def to_every_target(request: Request) -> JSONResponse:
        if not relay.configured:
            return JSONResponse({"detail": "no target is configured (GRAPHRUN_ALERT_*_WEBHOOK_URL)"}, 404)
        return await deliver(request, relay.configured)

    @app.post("/alerts/{target}")
    async def to_one_target(target: str, request: Request) -> JSONResponse:
        if target not in TARGETS:
            return JSONResponse({"detail": f"unknown target {target!r}: one of {', '.join(TARGETS)}"}, 404)
        if target not in relay.configured:
            name = f"GRAPHRUN_ALERT_{target.upper()}_WEBHOOK_URL"
            return JSONResponse({"detail": f"{target} is not configured: set {name}"}, 404)
        return await deliver(request, [target])

    return app
