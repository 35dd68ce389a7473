"""graphrun.protocol: a thread's stream turned into the thread-stream protocol's events."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from graphrun.protocol import Filter, RunInfo, Session, state_payload, supported_channel


def _event(method: str, namespace: list[str], data: Any = None) -> dict[str, Any]:
    return {"method": method, "params": {"namespace": namespace, "data": data}}


def test_channels_are_the_protocol_ones_and_named_custom_ones() -> None:
    assert all(supported_channel(c) for c in ["values", "input", "custom", "custom:progress"])
    assert not any(supported_channel(c) for c in ["debug", "custom:", "events", 3])


def test_a_filter_takes_its_channels_and_custom_names() -> None:
    f = Filter(frozenset({"input", "custom:progress"}))
    assert f.matches(_event("input.requested", []))
    assert f.matches(_event("custom", [], {"name": "progress", "payload": 1}))
    assert not f.matches(_event("custom", [], {"name": "other", "payload": 1}))
    assert not f.matches(_event("values", []))


def test_a_filter_takes_namespaces_by_prefix_down_to_its_depth() -> None:
    f = Filter(frozenset({"values"}), namespaces=(("agent",),), depth=1)
    assert f.matches(_event("values", ["agent:1f2e"]))  # a segment's task id suffix is ignored
    assert f.matches(_event("values", ["agent:1f2e", "tools:9"]))
    assert not f.matches(_event("values", ["agent:1f2e", "tools:9", "deeper"]))
    assert not f.matches(_event("values", []))
    assert not f.matches(_event("values", ["other"]))


class _Thread:
    """A thread whose runs all ended ``status``; when ``interrupted``, it waits at interrupts that its
    latest run, ``waiting_run``, left."""

    def __init__(self, status: str, interrupted: bool, waiting_run: str = "r1") -> None:
        self.status, self.interrupted, self.waiting_run = status, interrupted, waiting_run

    async def run(self, run_id: str) -> RunInfo | None:
        return RunInfo("asks", self.status)

    async def pending(self, run_id: str) -> bool:
        return self.interrupted and run_id == self.waiting_run


def _feed(session: Session, items: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for source_id, name, data in items:
            out += await session.feed(source_id, name, orjson.dumps(data))
        return out

    return asyncio.run(go())


def test_an_interrupted_run_opens_asks_and_stops_at_interrupted() -> None:
    thread = _Thread("success", interrupted=True)
    interrupt = {"id": "i1", "value": {"q": "ok?"}}
    events = _feed(
        Session(thread.run, thread.pending),
        [
            ("1-0", "metadata", {"run_id": "r1", "attempt": 1}),
            ("1-1", "values", {"draft": "x"}),
            ("1-2", "values", {"draft": "x", "__interrupt__": [interrupt]}),
            ("1-3", "metadata", {"run_id": "r1", "status": "run_done"}),
        ],
    )
    assert [(e["method"], e["event_id"]) for e in events] == [
        ("lifecycle", "synth:r1:lc||running"),
        ("values", "1-1"),
        ("input.requested", "synth:r1:input||i1"),
        ("lifecycle", "synth:r1:lc||interrupted"),
        ("values", "1-2"),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0]["params"]["data"] == {"event": "running", "graph_name": "asks"}
    assert events[2]["params"]["data"] == {"interrupt_id": "i1", "payload": {"q": "ok?"}}
    assert events[4]["params"]["data"] == {"draft": "x"}


@pytest.mark.parametrize(
    ("status", "interrupted", "phase"),
    [
        ("success", False, "completed"),
        ("success", True, "interrupted"),
        ("interrupted", False, "interrupted"),
        ("error", False, "failed"),
    ],
)
def test_a_run_ends_with_the_lifecycle_of_its_status(status: str, interrupted: bool, phase: str) -> None:
    thread = _Thread(status, interrupted)
    events = _feed(
        Session(thread.run, thread.pending),
        [("1-0", "metadata", {"run_id": "r1"}), ("1-1", "metadata", {"run_id": "r1", "status": "run_done"})],
    )
    assert [e["params"]["data"]["event"] for e in events] == ["running", phase]


def test_a_replayed_run_does_not_take_the_interrupts_of_a_later_one() -> None:
    # r1 completed; r2, started after it, now waits at an interrupt. Replaying the thread from its start,
    # r1 still ends completed.
    thread = _Thread("success", interrupted=True, waiting_run="r2")
    events = _feed(
        Session(thread.run, thread.pending),
        [
            ("1-0", "metadata", {"run_id": "r1"}),
            ("1-1", "metadata", {"run_id": "r1", "status": "run_done"}),
            ("2-0", "metadata", {"run_id": "r2"}),
            ("2-1", "metadata", {"run_id": "r2", "status": "run_done"}),
        ],
    )
    phases = [e["params"]["data"]["event"] for e in events]
    assert phases == ["running", "completed", "running", "interrupted"]


def test_an_error_fails_the_run_once_with_its_message() -> None:
    thread = _Thread("error", interrupted=False)
    events = _feed(
        Session(thread.run, thread.pending),
        [
            ("1-0", "metadata", {"run_id": "r1"}),
            ("1-1", "error", {"error": "ValueError", "message": "boom"}),
            ("1-2", "metadata", {"run_id": "r1", "status": "run_done"}),
        ],
    )
    assert [e["params"]["data"] for e in events] == [
        {"event": "running", "graph_name": "asks"},
        {"event": "failed", "graph_name": "asks", "error": "boom"},
    ]


def test_one_source_event_making_several_envelopes_numbers_their_ids() -> None:
    thread = _Thread("success", interrupted=False)
    update = {"type": "event", "method": "updates", "params": {"namespace": [], "data": {"a": 1}}}
    events = _feed(
        Session(thread.run, thread.pending),
        [("1-0", "metadata", {"run_id": "r1"}), ("1-1", "updates", update), ("1-2", "custom", {"n": 1})],
    )
    assert [e["event_id"] for e in events[1:]] == ["1-1", "1-2"]
    assert events[2]["params"]["data"] == {"payload": {"n": 1}}


def test_events_before_any_run_start_are_not_a_run() -> None:
    thread = _Thread("success", interrupted=False)
    assert _feed(Session(thread.run, thread.pending), [("1-0", "state_update", {"a": 1})]) == []


def test_state_payload_puts_messages_in_protocol_shape() -> None:
    message = {
        "type": "ai",
        "id": "m1",
        "content": ["hi", {"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
        "tool_calls": [{"name": "search", "args": {"q": "x"}, "id": "c1", "type": "tool_call"}],
        "response_metadata": {},
        "additional_kwargs": {},
    }
    assert state_payload({"messages": [message], "__interrupt__": []}) == {
        "messages": [
            {
                "type": "ai",
                "id": "m1",
                "content": [{"type": "text", "text": "hi"}, {"type": "image", "url": "http://x/y.png"}],
                "tool_calls": [{"type": "tool_call", "name": "search", "args": {"q": "x"}, "id": "c1"}],
            }
        ]
    }
