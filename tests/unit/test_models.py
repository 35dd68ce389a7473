"""``graphrun.models``: ids as the official server makes them and the pure decisions about runs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from graphrun.models import new_id, run_output, system_assistant_id, thread_status_after
from graphrun.types import RunStatus, ThreadStatus


def test_system_assistant_id_matches_the_official_server() -> None:
    # Observed on the official server: the system assistant of graph "tokens".
    assert system_assistant_id("tokens") == "d8d0182e-2cbc-5729-9506-df498005c394"


def test_system_assistant_id_is_stable_and_per_graph() -> None:
    assert system_assistant_id("agent") == system_assistant_id("agent")
    assert system_assistant_id("agent") != system_assistant_id("Agent")


def test_new_id_is_uuid7() -> None:
    raw = new_id()
    value = uuid.UUID(raw)

    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert raw == str(value)  # canonical lowercase, hyphenated form


def test_new_ids_are_unique() -> None:
    ids = [new_id() for _ in range(1000)]

    assert len(set(ids)) == len(ids)


def test_ids_created_later_sort_later() -> None:
    # Many ids fall into the same millisecond here: they must still sort in creation order,
    # since runs of a thread are queued by (created_at, run_id).
    ids = [new_id() for _ in range(1000)]

    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("run_status", "has_pending_tasks", "expected"),
    [
        ("success", False, "idle"),
        ("success", True, "interrupted"),
        ("error", False, "error"),
        ("error", True, "error"),
        ("timeout", False, "error"),
        ("timeout", True, "error"),
        ("interrupted", False, "idle"),
        ("interrupted", True, "interrupted"),
    ],
)
def test_thread_status_after(run_status: RunStatus, has_pending_tasks: bool, expected: ThreadStatus) -> None:
    assert thread_status_after(run_status, has_pending_tasks) == expected


INTERRUPT = {"value": "approve?", "id": "int-1"}


@pytest.mark.parametrize(
    ("values", "interrupts", "error", "expected"),
    [
        pytest.param({"n": 1}, [], None, {"n": 1}, id="values"),
        pytest.param(None, [], None, {}, id="no-values"),
        pytest.param(
            {"n": 1}, [INTERRUPT], None, {"n": 1, "__interrupt__": [INTERRUPT]}, id="interrupt-merged"
        ),
        pytest.param(None, [INTERRUPT], None, {"__interrupt__": [INTERRUPT]}, id="interrupt-only"),
        pytest.param(
            {"n": 1},
            [INTERRUPT],
            {"error": "ValueError", "message": "boom"},
            {"__error__": {"error": "ValueError", "message": "boom"}},
            id="error-wins",
        ),
    ],
)
def test_run_output(
    values: dict[str, Any] | None,
    interrupts: list[dict[str, Any]],
    error: dict[str, Any] | None,
    expected: object,
) -> None:
    assert run_output(values, interrupts, error) == expected


def test_run_output_does_not_change_the_values() -> None:
    values = {"n": 1}

    run_output(values, [INTERRUPT], None)

    assert values == {"n": 1}
