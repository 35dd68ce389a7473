"""The start-up banner: always in ``graphrun dev``, in production only for a person at a terminal; it
gives browsable addresses for an any-address bind, and leaves out what the config turned off."""

from __future__ import annotations

import io

from graphrun import banner


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_banner_shows_in_dev_and_at_a_terminal_only() -> None:
    assert banner.wanted("dev", io.StringIO())
    assert not banner.wanted("api", io.StringIO())
    assert banner.wanted("serve", Terminal())


def test_an_any_address_bind_is_shown_as_loopback() -> None:
    assert banner.base_url("0.0.0.0", 2024) == "http://127.0.0.1:2024"
    assert banner.base_url("::1", 8000) == "http://[::1]:8000"


def test_what_is_turned_off_is_left_out_and_auth_is_named() -> None:
    text = banner.render(
        command="api",
        version="1.0",
        url="http://h:1",
        data="PostgreSQL postgresql://u:***@db/g",
        graphs=["a", "b"],
        console=False,
        docs=True,
        auth="an API key (x-api-key)",
    )
    assert "Console" not in text
    assert "  Docs     http://h:1/docs" in text.splitlines()
    assert "  Graphs   a, b" in text.splitlines()
    assert "  Auth     an API key (x-api-key)" in text.splitlines()
