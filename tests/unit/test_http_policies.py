"""``http.configurable_headers`` (which request headers a run sees) and ``webhooks.url`` (what a run's
webhook may be), as the official server reads them."""

from __future__ import annotations

import re

import pytest

from graphrun import errors
from graphrun.api.deps import HeaderPolicy
from graphrun.config import HEADER_TEMPLATE
from graphrun.settings import resolve_templates
from graphrun.webhooks import UrlPolicy


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
def test_an_allowed_webhook_passes(url: str) -> None:
    assert POLICY is not None
    POLICY.check(url)


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
def test_a_webhook_outside_the_policy_is_refused(url: str, fragment: str) -> None:
    assert POLICY is not None
    with pytest.raises(errors.InvalidRequest, match=fragment):
        POLICY.check(url)


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
        "0.0.0.0",
    ],
)
def test_loopback_is_refused_under_a_policy_unless_allowed(host: str) -> None:
    strict, open_ = UrlPolicy.of({}), UrlPolicy.of({"disable_loopback": False})
    assert strict is not None
    assert open_ is not None

    with pytest.raises(errors.InvalidRequest, match="loopback"):
        strict.check(f"http://{host}:8000/hook")
    open_.check(f"http://{host}:8000/hook")


def test_header_templates_read_the_environment() -> None:
    env = {"LG_WEBHOOK_TOKEN": "t0k"}

    assert resolve_templates("Bearer ${{ env.LG_WEBHOOK_TOKEN }}", HEADER_TEMPLATE, env) == "Bearer t0k"
    with pytest.raises(errors.ConfigError, match=re.escape("env.LG_WEBHOOK_MISSING, which is not set")):
        resolve_templates("${{env.LG_WEBHOOK_MISSING}}", HEADER_TEMPLATE, env)
