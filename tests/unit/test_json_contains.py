"""``json_contains``: the SQLite adapter's stand-in for Postgres' ``jsonb @>``."""

from __future__ import annotations

from typing import Any

import pytest

from graphrun.stores._json import contains, sql_contains


@pytest.mark.parametrize(
    ("document", "wanted", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": 1}, {"b": 1}, False),
        ({"flag": 1}, {"flag": True}, False),
        ({"flag": True}, {"flag": 1}, False),
        ({"flag": True}, {"flag": True}, True),
        ({"n": 1.0}, {"n": 1}, True),
        ({"o": {"x": 1, "y": 2}}, {"o": {"x": 1}}, True),
        ({"o": {"x": 1}}, {"o": {"x": 1, "y": 2}}, False),
        ({"tags": ["a", "b"]}, {"tags": ["b"]}, True),
        ({"tags": ["a"]}, {"tags": ["c"]}, False),
        ({"k": None}, {"k": None}, True),
        ({}, {"k": None}, False),
        ({"s": "1"}, {"s": 1}, False),
    ],
)
def test_contains_follows_jsonb_containment(document: Any, wanted: Any, expected: bool) -> None:
    assert contains(document, wanted) is expected


@pytest.mark.parametrize(
    ("document", "wanted", "expected"),
    [
        ('{"a": 1}', None, 1),
        ('{"a": 1}', "{}", 1),
        (None, "{}", 1),
        (None, '{"a": 1}', 0),
        ('{"a": 1}', '{"a": 1}', 1),
        ('{"a": true}', '{"a": 1}', 0),
    ],
)
def test_sql_function_matches_everything_on_an_empty_filter(
    document: str | None, wanted: str | None, expected: int
) -> None:
    assert sql_contains(document, wanted) == expected
