"""POST a finished run to the URL it gave as ``webhook``, the way the official server does.

The payload is the run (as ``GET /threads/{t}/runs/{r}`` answers it) with its final ``status``, when it
started and ended, when the webhook was sent, the thread's ``values`` at the end and the ``error`` if it
failed. A connection error, a timeout or a 5xx is retried with exponential backoff; a 4xx is not (the
receiver refused this payload, and sending it again will not change that). Every failure is logged and
none reaches the run: delivery runs in the background, after the run's outcome is recorded.

Written on httpx directly: a retry loop of a few lines, with the run's own log context, is simpler to
follow than a general retry library.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog

from graphrun import encoding, errors, redact
from graphrun.config import HEADER_TEMPLATE
from graphrun.models import Run, RunOutcome, run_json, utcnow
from graphrun.settings import Settings, resolve_templates
from graphrun.types import Json

log = structlog.get_logger("graphrun.webhooks")

first_backoff_s = 0.5


def payload(run: Run, outcome: RunOutcome, started_at: datetime, ended_at: datetime) -> Json:
    body = {
        **run_json(run),
        "status": outcome.status,
        "run_started_at": started_at.isoformat(),
        "run_ended_at": ended_at.isoformat(),
        "values": outcome.thread_values,
    }
    if outcome.error is not None:
        body["error"] = outcome.error
    # The run's config may carry forwarded headers and keys (http.configurable_headers): the receiver
    # gets them through the redactor, as logs do. The values are the graph's output, and kept as is.
    body["kwargs"] = redact.value(body.get("kwargs"))
    return body


class Webhooks:
    """Delivers webhooks in the background. ``async with`` it: on exit, deliveries still under way get
    ``webhook_timeout_s`` to finish, then are dropped (and logged)."""

    def __init__(
        self,
        settings: Settings,
        headers: Mapping[str, str] | None = None,
        fields: frozenset[str] | None = None,
    ) -> None:
        self._settings = settings
        # ${{ env.NAME }} templates are read once, now: a variable missing stops start-up.
        self._headers = {k: resolve_templates(v, HEADER_TEMPLATE) for k, v in (headers or {}).items()}
        self._fields = fields
        self._client: httpx.AsyncClient | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Webhooks:
        self._client = httpx.AsyncClient(timeout=self._settings.webhook_timeout_s, follow_redirects=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pending:
            _, late = await asyncio.wait(self._pending, timeout=self._settings.webhook_timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def send(self, run: Run, outcome: RunOutcome, started_at: datetime) -> None:
        url = run.request.webhook
        if url is None:
            return
        body = payload(run, outcome, started_at, utcnow())
        if self._fields is not None:
            body = {k: v for k, v in body.items() if k in self._fields}
        task = asyncio.create_task(self._deliver(url, body, run.run_id), name=f"webhook:{run.run_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, url: str, body: Json, run_id: str) -> None:
        assert self._client is not None, "use Webhooks as an async context manager"
        attempts = self._settings.webhook_retries + 1
        for attempt in range(1, attempts + 1):
            if self._fields is None or "webhook_sent_at" in self._fields:
                body["webhook_sent_at"] = utcnow().isoformat()
            try:
                response = await self._client.post(
                    url,
                    content=encoding.dumps(body),
                    headers={**self._headers, "content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    log.info(
                        "webhook_sent", run_id=run_id, url=url, status=response.status_code, attempt=attempt
                    )
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500:
                    log.warning("webhook_refused", run_id=run_id, url=url, problem=problem)
                    return
            if attempt < attempts:
                log.info("webhook_retry", run_id=run_id, url=url, problem=problem, attempt=attempt)
                await asyncio.sleep(first_backoff_s * 2 ** (attempt - 1))
            else:
                log.warning("webhook_failed", run_id=run_id, url=url, problem=problem, attempts=attempts)


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "host.docker.internal"})


@dataclass(frozen=True)
class UrlPolicy:
    """``webhooks.url`` of langgraph.json: what a run's ``webhook`` may be, checked when the run (or
    cron) is created, as the official server checks it (422 otherwise). With a policy, loopback targets
    are refused unless ``disable_loopback`` is false, as there. Without one, graphrun takes any
    absolute http(s) URL (the official server also refuses private addresses by default).

    Host names are not resolved: a name that points at a loopback address passes (the official server
    resolves it)."""

    require_https: bool = False
    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    max_url_length: int = 4096
    disable_loopback: bool = True

    @classmethod
    def of(cls, section: Mapping[str, Any] | None) -> UrlPolicy | None:
        if section is None:
            return None
        return cls(
            require_https=bool(section.get("require_https", False)),
            allowed_domains=tuple(d.lower() for d in section.get("allowed_domains") or ()),
            allowed_ports=tuple(section.get("allowed_ports") or ()),
            max_url_length=int(section.get("max_url_length") or 4096),
            disable_loopback=bool(section.get("disable_loopback", True)),
        )

    def check(self, url: str) -> None:
        if len(url) > self.max_url_length:
            raise errors.InvalidRequest(f"webhook URL is longer than {self.max_url_length} characters")
        parts = urllib.parse.urlsplit(url)
        if self.require_https and parts.scheme.lower() != "https":
            raise errors.InvalidRequest("webhook must use https (webhooks.url.require_https)")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise errors.InvalidRequest(f"webhook URL has an invalid port: {url!r}") from None
        if self.allowed_ports and port not in self.allowed_ports:
            raise errors.InvalidRequest(f"webhook port {port} is not allowed (webhooks.url.allowed_ports)")
        host = (parts.hostname or "").lower()
        if self.allowed_domains and not any(_host_matches(host, d) for d in self.allowed_domains):
            raise errors.InvalidRequest(
                f"webhook host {host!r} is not allowed (webhooks.url.allowed_domains)"
            )
        if self.disable_loopback and _loopback(host):
            raise errors.InvalidRequest(
                f"webhook host {host!r} is a loopback address; set webhooks.url.disable_loopback to false "
                "to allow it"
            )


def _host_matches(host: str, allowed: str) -> bool:
    """``*.example.com`` matches subdomains only, not ``example.com``; anything else matches exactly."""
    if allowed.startswith("*."):
        return host.endswith(allowed[1:])
    return host == allowed


def _loopback(host: str) -> bool:
    """A loopback name or address in any spelling the resolver takes: ``127.1``, ``2130706433``,
    ``0x7f000001`` (``inet_aton``'s forms), ``::ffff:127.0.0.1``, and ``0.0.0.0``, which reaches this
    machine too."""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False  # a host name: not resolved here
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
