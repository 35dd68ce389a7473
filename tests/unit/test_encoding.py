"""``graphrun.encoding``: graph state written as JSON the way the official server writes it.

Clients (the SDKs, ``useStream``) read messages as ``{"type": "human", "content": ...}`` and interrupts as
``{"value", "id", "response_schema"}``; anything else in state must serialize without failing a run.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections import namedtuple
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.types import Interrupt
from pydantic import BaseModel

from graphrun import encoding


class Decision(BaseModel):
    approved: bool
    reason: str = ""


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    when: datetime


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


Pair = namedtuple("Pair", ["left", "right"])


@pytest.mark.parametrize(
    ("message", "expected_type"),
    [
        (HumanMessage("hi"), "human"),
        (AIMessage("hello"), "ai"),
        (SystemMessage("be brief"), "system"),
        (ToolMessage("42", tool_call_id="call-1"), "tool"),
    ],
)
def test_messages_serialize_as_the_official_server_writes_them(message: Any, expected_type: str) -> None:
    out = encoding.jsonable(message)

    assert out["type"] == expected_type
    assert out["content"] == message.content
    assert out == message.model_dump()


def test_messages_inside_state() -> None:
    ai = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "call-1"}], id="m-2")

    out = encoding.jsonable({"messages": [HumanMessage("add 1", id="m-1"), ai]})

    assert [(m["type"], m["id"]) for m in out["messages"]] == [("human", "m-1"), ("ai", "m-2")]
    assert out["messages"][1]["tool_calls"] == [
        {"name": "add", "args": {"a": 1}, "id": "call-1", "type": "tool_call"}
    ]


def test_interrupt() -> None:
    assert encoding.jsonable(Interrupt("approve?", id="int-1")) == {
        "value": "approve?",
        "id": "int-1",
        "response_schema": None,
    }


def test_interrupt_with_json_schema() -> None:
    schema = {"type": "object", "properties": {"approved": {"type": "boolean"}}}

    out = encoding.jsonable(Interrupt({"q": "ok?"}, id="int-1", response_schema=schema))

    assert out == {"value": {"q": "ok?"}, "id": "int-1", "response_schema": schema}


def test_interrupt_with_pydantic_response_schema() -> None:
    # Interrupt[Decision] may carry the class itself; the wire gets its JSON schema.
    out = encoding.jsonable(Interrupt("ok?", id="int-1", response_schema=Decision))

    assert out["response_schema"] == Decision.model_json_schema()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2025-01-02T03:04:05.000006+00:00", id="aware"
        ),
        pytest.param(datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05", id="naive"),
        pytest.param(date(2025, 1, 2), "2025-01-02", id="date"),
        pytest.param(timedelta(minutes=1, milliseconds=500), 60.5, id="timedelta-seconds"),
        pytest.param(
            uuid.UUID("d8d0182e-2cbc-5729-9506-df498005c394"),
            "d8d0182e-2cbc-5729-9506-df498005c394",
            id="uuid",
        ),
        pytest.param(Decimal("1.10"), "1.10", id="decimal"),
        pytest.param(Color.RED, "red", id="enum"),
        pytest.param(b"caf\xc3\xa9", "café", id="bytes"),
        pytest.param((1, "a", None), [1, "a", None], id="tuple"),
        pytest.param(Pair(1, 2), {"left": 1, "right": 2}, id="namedtuple"),
        pytest.param({1: "a", None: "b"}, {"1": "a", "null": "b"}, id="non-str-keys"),
        pytest.param(Decision(approved=True), {"approved": True, "reason": ""}, id="pydantic"),
        pytest.param(
            Point(1, datetime(2025, 1, 2, tzinfo=UTC)),
            {"x": 1, "when": "2025-01-02T00:00:00+00:00"},
            id="dataclass",
        ),
        pytest.param(Opaque(), "<Opaque thing>", id="unknown-object-repr"),
        pytest.param(Opaque, "Opaque", id="plain-class-name"),
    ],
)
def test_values(value: object, expected: object) -> None:
    assert encoding.jsonable({"v": value}) == {"v": expected}


@pytest.mark.parametrize("value", [{3, 1, 2}, frozenset({3, 1, 2})], ids=["set", "frozenset"])
def test_sets_become_lists(value: object) -> None:
    out = encoding.jsonable(value)

    assert isinstance(out, list)
    assert sorted(out) == [1, 2, 3]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(2**64, id="int-beyond-64-bits"),
        pytest.param({("a", 1): "tuple key"}, id="tuple-dict-key"),
        pytest.param(object(), id="bare-object"),
        pytest.param(lambda: None, id="function"),
    ],
)
def test_dumps_never_raises(value: object) -> None:
    # "never raises for an unusual object inside graph state": one odd value must not fail a run's output.
    out = encoding.loads(encoding.dumps({"state": value}))

    assert set(out) == {"state"}


def test_round_trip_and_helpers() -> None:
    data = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}

    assert encoding.loads(encoding.dumps(data)) == data
    assert encoding.loads(encoding.dumps_str(data)) == data
    assert encoding.dumps_str({"é": 1}) == '{"é":1}'
    assert encoding.loads(None) is None
