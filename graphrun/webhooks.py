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
from collections.abc import Iterable, Mapping
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
MAX_REDIRECTS = 5  # each one checked against the policy like the first request


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
        policy: UrlPolicy | None = None,
    ) -> None:
        self._settings = settings
        # ${{ env.NAME }} templates are read once, now: a variable missing stops start-up.
        self._headers = {k: resolve_templates(v, HEADER_TEMPLATE) for k, v in (headers or {}).items()}
        self._fields = fields
        self._policy = policy or UrlPolicy.of(None, allow_local=settings.webhook_allow_local)
        self._client: httpx.AsyncClient | None = None
        self._pending: set[asyncio.Task[None]] = set()
        if self._headers and not self._policy.allowed_domains:
            log.warning(
                "webhook_headers_unsent",
                reason="webhooks.headers go only to hosts webhooks.url.allowed_domains lists; it lists none",
            )

    async def __aenter__(self) -> Webhooks:
        self._client = httpx.AsyncClient(
            transport=_Guard(self._policy, self._headers),
            timeout=self._settings.webhook_timeout_s,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
        )
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
            except Blocked as exc:
                log.warning("webhook_blocked", run_id=run_id, url=url, problem=str(exc))
                return
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
_METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.amazonaws.com", "metadata", "instance-data"}
)
_K8S_SUFFIX = ".svc.cluster.local"  # a cluster's internal services, refused by name as on the official server
# Cloud metadata services outside link-local (Alibaba's; AWS's over IPv6): refused even where private
# addresses are allowed, as on the official server.
_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in all but name
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Blocked(Exception):
    """A webhook's host is one the policy refuses, or (``unresolved``) does not resolve."""

    def __init__(self, message: str, *, unresolved: bool = False) -> None:
        super().__init__(message)
        self.unresolved = unresolved


@dataclass(frozen=True)
class UrlPolicy:
    """What a run's ``webhook`` may reach: ``webhooks.url`` of langgraph.json, with the official server's
    keys. Checked when the run (or cron) is created, its host resolved as the official server resolves
    it (422 for a name that does not resolve or resolves to a refused address), and again as each
    request is sent, redirects included, against every address its host resolves to then (the
    connection goes to the address checked, so a later lookup cannot change it).

    Refused by default: loopback (``disable_loopback``, default true as on the official server) and
    private addresses (``disable_private_ips``: default true here, false on the official server),
    ``GRAPHRUN_WEBHOOK_ALLOW_LOCAL`` allowing both for local development; always: unspecified,
    link-local (where cloud metadata answers), multicast and reserved addresses, cloud metadata names and
    addresses, ``*.svc.cluster.local``.
    A host ``allowed_domains`` lists is trusted as the operator's (as on the official server: not
    resolved), and only such a host gets the configured ``webhooks.headers``."""

    require_https: bool = False
    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    max_url_length: int = 4096
    disable_loopback: bool = True
    disable_private_ips: bool = True

    @classmethod
    def of(cls, section: Mapping[str, Any] | None, *, allow_local: bool = False) -> UrlPolicy:
        section = section or {}
        return cls(
            require_https=bool(section.get("require_https", False)),
            allowed_domains=tuple(d.lower() for d in section.get("allowed_domains") or ()),
            allowed_ports=tuple(section.get("allowed_ports") or ()),
            max_url_length=int(section.get("max_url_length") or 4096),
            disable_loopback=not allow_local and bool(section.get("disable_loopback", True)),
            disable_private_ips=not allow_local and bool(section.get("disable_private_ips", True)),
        )

    async def check(self, url: str) -> None:
        """The URL as a run names it: ``errors.InvalidRequest`` (422) if the policy refuses it, or its
        host does not resolve (as on the official server)."""
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
        if self.allowed_domains and not self.trusts(host):
            raise errors.InvalidRequest(
                f"webhook host {host!r} is not allowed (webhooks.url.allowed_domains)"
            )
        if self.trusts(host):
            return
        problem = self.refusal_of_name(host)
        address = _literal(host)
        if problem is None and address is not None:
            problem = self.refusal_of(address)
        if problem is not None:
            raise errors.InvalidRequest(f"webhook host {host!r} is {problem}")
        if address is not None or (not self.disable_loopback and _is_loopback_name(host)):
            return  # an address is itself; a loopback name allowed is not resolved (as official)
        try:
            await self.address(host, port)
        except Blocked as exc:
            raise errors.InvalidRequest(str(exc)) from None

    def trusts(self, host: str) -> bool:
        """``host`` is one ``allowed_domains`` lists."""
        return any(_host_matches(host.lower(), d) for d in self.allowed_domains)

    def refusal_of_name(self, host: str) -> str | None:
        host = host.lower()
        if self.disable_loopback and _is_loopback_name(host):
            return f"a loopback address; {_LOCAL_HINT}"
        if host in _METADATA_NAMES:
            return "a cloud metadata service"
        if host.endswith(_K8S_SUFFIX):
            return "a Kubernetes cluster-internal name"
        return None

    def refusal_of(self, address: Address) -> str | None:
        """Why ``address`` may not be reached, or None. IPv4 inside IPv6 (mapped, NAT64) is the IPv4."""
        if isinstance(address, ipaddress.IPv6Address):
            inner = address.ipv4_mapped
            if inner is None and address in _NAT64:
                inner = ipaddress.IPv4Address(address.packed[-4:])
            if inner is not None:
                address = inner
            elif address in _V4_COMPATIBLE and int(address) > 1:
                return "an IPv4-compatible IPv6 address"
        if address in _METADATA_ADDRESSES:
            return "a cloud metadata service"
        if address.is_unspecified or address in _THIS_NETWORK:
            return "an unspecified address (it reaches this machine)"
        if address.is_link_local:
            return "a link-local address (where cloud metadata answers)"
        if address.is_loopback:  # (before reserved: ::1 lies in the reserved ::/8)
            return f"a loopback address; {_LOCAL_HINT}" if self.disable_loopback else None
        if address.is_multicast or address.is_reserved:
            return "a multicast or reserved address"
        if address.is_private or address in _SHARED:
            return f"a private address; {_LOCAL_HINT}" if self.disable_private_ips else None
        return None

    async def address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: every address it resolves to must be allowed.
        ``Blocked`` if one is not, or if it does not resolve (``unresolved``: a send retries it)."""
        problem = self.refusal_of_name(host)
        if problem is not None:
            raise Blocked(f"webhook host {host!r} is {problem}")
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Blocked(f"webhook host {host!r} does not resolve: {exc}", unresolved=True) from exc
        addresses = [str(info[4][0]) for info in found]
        if not addresses:
            raise Blocked(f"webhook host {host!r} resolves to no address", unresolved=True)
        for text in addresses:
            problem = self.refusal_of(ipaddress.ip_address(text.partition("%")[0]))
            if problem is not None:
                raise Blocked(f"webhook host {host!r} resolves to {text}, {problem}")
        return addresses[0]


_LOCAL_HINT = (
    "set GRAPHRUN_WEBHOOK_ALLOW_LOCAL=true for local development, or webhooks.url.disable_loopback / "
    "disable_private_ips to false"
)


class _Guard(httpx.AsyncBaseTransport):
    """Sends each webhook request (the first and every redirect) to the address the policy checked, and
    with the configured headers only to a host ``allowed_domains`` lists."""

    def __init__(self, policy: UrlPolicy, header_names: Iterable[str]) -> None:
        self._policy = policy
        self._header_names = [n.lower() for n in header_names]
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if self._policy.trusts(host):
            return await self._inner.handle_async_request(request)
        for name in self._header_names:
            request.headers.pop(name, None)
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            address = await self._policy.address(host, port)
        except Blocked as exc:
            if exc.unresolved:  # perhaps for a moment: retried as a connection error is
                raise httpx.ConnectError(str(exc), request=request) from exc
            raise
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = host  # the certificate is still checked against the name
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,  # Host: still the name
            stream=request.stream,
            extensions=extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _is_loopback_name(host: str) -> bool:
    return host in _LOOPBACK_NAMES or host.endswith(".localhost")


def _host_matches(host: str, allowed: str) -> bool:
    """``*.example.com`` matches subdomains only, not ``example.com``; anything else matches exactly."""
    if allowed.startswith("*."):
        return host.endswith(allowed[1:])
    return host == allowed


def _literal(host: str) -> Address | None:
    """``host`` as an address, in any spelling the resolver takes: ``127.1``, ``2130706433``,
    ``0x7f000001`` (``inet_aton``'s forms), ``::ffff:127.0.0.1``; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
