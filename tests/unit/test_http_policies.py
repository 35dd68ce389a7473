"""``http.configurable_headers`` (which request headers a run sees) and ``webhooks.url`` (what a run's
webhook may be), as the official server reads them."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Any

import pytest

from graphrun import errors
from graphrun.api.deps import HeaderPolicy
from graphrun.config import HEADER_TEMPLATE
from graphrun.settings import resolve_templates
from graphrun.webhooks import Blocked, UrlPolicy


def test_no_section_forwards_nothing() -> None:
    assert HeaderPolicy.of(None) is None
    assert HeaderPolicy.of({}) is None


def test_only_included_headers_not_excluded_are_forwarded() -> None:
    policy = HeaderPolicy.of({"includes": ["x-user-*", "user-agent"], "excludes": ["x-user-secret"]})
    assert policy is not None

    picked = policy.pick(
        {
            "X-User-Id": "u1",
            "x-user-secret": "s",
            "user-agent": "sdk",
            "x-other": "o",
            "x-api-key": "k",
            "Authorization": "Bearer t",
        }
    )

    assert picked == {"x-user-id": "u1", "user-agent": "sdk"}


def test_credentials_are_never_forwarded_even_when_included() -> None:
    policy = HeaderPolicy.of({"include": ["*"]})
    assert policy is not None

    assert policy.pick({"authorization": "a", "x-api-key": "b", "cookie": "c", "x-tenant": "t"}) == {
        "x-tenant": "t"
    }


def test_patterns_are_literal_but_for_the_star() -> None:
    policy = HeaderPolicy.of({"includes": ["x-a.b", "x-[c]"]})
    assert policy is not None

    assert policy.wanted("x-a.b")
    assert not policy.wanted("x-aXb")
    assert policy.wanted("x-[c]")
    assert not policy.wanted("x-c")


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("x-user", "must be an object"),
        ({"only": ["x"]}, "unknown key 'only'"),
        ({"includes": [1]}, "list of strings"),
    ],
)
def test_a_bad_section_is_refused(section: object, fragment: str) -> None:
    with pytest.raises(errors.ConfigError, match=re.escape(fragment)):
        HeaderPolicy.of(section)


POLICY = UrlPolicy.of(
    {
        "require_https": True,
        "allowed_domains": ["hooks.example.com", "*.corp.example"],
        "allowed_ports": [443],
    }
)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "https://a.corp.example/hook", "https://b.a.corp.example:443/"]
)
async def test_an_allowed_webhook_passes(url: str) -> None:
    assert POLICY is not None
    await POLICY.check(url)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("https://hooks.example.com:8443/x", "port 8443"),
        ("https://corp.example/x", "not allowed"),  # the wildcard is for subdomains only
        ("https://evil.example/x", "not allowed"),
        ("https://hooks.example.com/" + "x" * 5000, "longer than"),
    ],
)
async def test_a_webhook_outside_the_policy_is_refused(url: str, fragment: str) -> None:
    assert POLICY is not None
    with pytest.raises(errors.InvalidRequest, match=fragment):
        await POLICY.check(url)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.1",
        "[::1]",
        "host.docker.internal",
        "app.localhost",
        "127.1",
        "2130706433",
        "0x7f000001",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::7f00:1]",
    ],
)
async def test_loopback_is_refused_unless_allowed(host: str) -> None:
    strict, open_ = UrlPolicy.of(None), UrlPolicy.of({"disable_loopback": False})

    with pytest.raises(errors.InvalidRequest, match="loopback"):
        await strict.check(f"http://{host}:8000/hook")
    await open_.check(f"http://{host}:8000/hook")
    await UrlPolicy.of(None, allow_local=True).check(f"http://{host}:8000/hook")


@pytest.mark.parametrize(
    "host", ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "[fd00::1]", "167772161"]
)
async def test_private_addresses_are_refused_unless_allowed(host: str) -> None:
    with pytest.raises(errors.InvalidRequest, match="private"):
        await UrlPolicy.of(None).check(f"http://{host}/hook")
    with pytest.raises(errors.InvalidRequest, match="private"):
        await UrlPolicy.of({"disable_loopback": False}).check(f"http://{host}/hook")
    await UrlPolicy.of({"disable_private_ips": False}).check(f"http://{host}/hook")
    await UrlPolicy.of(None, allow_local=True).check(f"http://{host}/hook")


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("0.0.0.0", "unspecified"),
        ("0", "unspecified"),
        ("[::]", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("224.0.0.1", "multicast"),
        ("metadata.google.internal", "metadata"),
        ("100.100.100.200", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("api.default.svc.cluster.local", "Kubernetes"),
    ],
)
async def test_some_addresses_are_refused_even_for_local_development(host: str, fragment: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=fragment):
        await UrlPolicy.of(None, allow_local=True).check(f"http://{host}/hook")


def _resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    """Every name resolves to ``addresses`` (DNS is a true edge); the names asked are returned."""
    asked: list[str] = []

    async def getaddrinfo(
        self: asyncio.AbstractEventLoop, host: str, port: int, **kwargs: object
    ) -> list[tuple[Any, ...]]:
        asked.append(host)
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return asked


async def test_a_name_is_checked_by_every_address_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """One refused address among public ones is enough, when the run is created and when it is sent."""
    asked = _resolving_to(monkeypatch, "93.184.216.34", "127.0.0.1")
    policy = UrlPolicy.of(None)

    with pytest.raises(errors.InvalidRequest, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        await policy.check("https://hooks.example.test/hook")
    with pytest.raises(Blocked, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        await policy.address("hooks.example.test", 443)
    assert asked == ["hooks.example.test", "hooks.example.test"]
    await UrlPolicy.of(None, allow_local=True).check("https://hooks.example.test/hook")


async def test_a_name_that_resolves_to_public_addresses_only_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving_to(monkeypatch, "93.184.216.34", "2606:2800:220:1::1")
    policy = UrlPolicy.of(None)

    await policy.check("https://hooks.example.test/hook")
    assert await policy.address("hooks.example.test", 443) == "93.184.216.34"


@pytest.mark.parametrize("address", ["100.100.100.200", "fd00:ec2::254", "169.254.169.254"])
async def test_a_name_that_resolves_to_a_metadata_service_is_refused_even_for_local_development(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    _resolving_to(monkeypatch, address)

    with pytest.raises(errors.InvalidRequest, match="resolves to"):
        await UrlPolicy.of(None, allow_local=True).check("http://hooks.example.test/hook")


async def test_a_name_that_does_not_resolve_is_refused_when_the_run_is_created() -> None:
    """As on the official server (a 422 "DNS resolution failed"); ``.invalid`` never resolves (RFC 6761)."""
    with pytest.raises(errors.InvalidRequest, match="does not resolve"):
        await UrlPolicy.of(None).check("http://nobody.invalid/hook")


async def test_a_trusted_domain_is_not_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the official server: a host ``allowed_domains`` lists is the operator's."""
    asked = _resolving_to(monkeypatch, "10.0.0.1")

    await UrlPolicy.of({"allowed_domains": ["hooks.internal.example"]}).check(
        "http://hooks.internal.example/"
    )
    assert asked == []


def test_header_templates_read_the_environment() -> None:
    env = {"LG_WEBHOOK_TOKEN": "t0k"}

    assert resolve_templates("Bearer ${{ env.LG_WEBHOOK_TOKEN }}", HEADER_TEMPLATE, env) == "Bearer t0k"
    with pytest.raises(errors.ConfigError, match=re.escape("env.LG_WEBHOOK_MISSING, which is not set")):
        resolve_templates("${{env.LG_WEBHOOK_MISSING}}", HEADER_TEMPLATE, env)
