"""The drills' history checker (bench/_history.py) on hand-made histories: a clean one passes, and each
invariant, broken on purpose, is reported by its check (and only by it)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bench._history import (
    AcceptedRun,
    Checkpoint,
    Execution,
    History,
    Resume,
    check,
    checkpoints_from_history,
)

T, R = "thread-1", "run-1"


def clean() -> History:
    """One run: its node began at t=10 in step 1, whose checkpoint was written at t=11; one question and
    one answer; a stream cut after its first event and resumed at the second."""
    return History(
        runs=[AcceptedRun(R, T, "success")],
        statuses={R: "success"},
        executions=[Execution(T, R, "answer", 1, 10.0)],
        checkpoints=[Checkpoint(T, -1, 9.0), Checkpoint(T, 0, 9.5), Checkpoint(T, 1, 11.0)],
        messages={
            T: [
                {"id": "m1", "type": "human", "content": "question 1"},
                {"id": "m2", "type": "ai", "content": "the answer"},
            ]
        },
        resumes=[Resume(R, ("1-0",), ("2-0", "3-0"), ("1-0", "2-0", "3-0"))],
    )


def broken(history: History) -> dict[str, list[str]]:
    """The checks that found something."""
    return {name: found for name, found in check(history).items() if found}


def test_a_clean_history_has_no_violation() -> None:
    assert broken(clean()) == {}


def test_a_run_still_running_or_missing_or_ended_twice_has_no_single_final_status() -> None:
    running = dataclasses.replace(clean(), statuses={R: "running"})
    missing = dataclasses.replace(clean(), statuses={})
    twice = dataclasses.replace(clean(), statuses={R: "error"})  # the client saw success
    for history, words in ((running, "still running"), (missing, "not in the runs table"), (twice, "twice")):
        found = broken(history)
        assert list(found) == ["final_status"], found
        assert words in found["final_status"][0]


def test_a_node_that_began_after_its_step_was_checkpointed_ran_again() -> None:
    history = clean()
    history.executions.append(Execution(T, R, "answer", 1, 12.0))  # a second execution after t=11
    found = broken(history)
    assert list(found) == ["no_rerun"], found
    assert "ran again" in found["no_rerun"][0]


def test_a_node_run_again_before_its_step_was_checkpointed_is_no_violation() -> None:
    """A crash before the checkpoint: the step never completed, so running it again is what must happen."""
    history = clean()
    history.executions.insert(0, Execution(T, R, "answer", 1, 5.0))
    assert broken(history) == {}


def test_a_successful_run_without_recorded_executions_is_reported() -> None:
    found = broken(dataclasses.replace(clean(), executions=[]))
    assert list(found) == ["no_rerun"], found
    assert "no node execution recorded" in found["no_rerun"][0]


@pytest.mark.parametrize(
    "extra",
    [
        {"id": "m2", "type": "ai", "content": "another text, same id"},
        {"id": "m3", "type": "ai", "content": "the answer"},
    ],
    ids=["same id", "same content"],
)
def test_a_message_twice_in_a_thread_is_reported(extra: dict[str, str]) -> None:
    history = clean()
    history.messages[T].append(extra)
    found = broken(history)
    assert list(found) == ["no_duplicate_message"], found


@pytest.mark.parametrize(
    ("after", "words"),
    [
        (("3-0",), "expected"),  # a gap: 2-0 was skipped
        (("1-0", "2-0", "3-0"), "repeat"),  # a repeat: the event already received came again
        (("3-0", "2-0"), "disorder"),  # out of order
    ],
    ids=["gap", "repeat", "order"],
)
def test_a_resume_that_did_not_continue_at_the_next_event_is_reported(
    after: tuple[str, ...], words: str
) -> None:
    history = dataclasses.replace(clean(), resumes=[Resume(R, ("1-0",), after, ("1-0", "2-0", "3-0"))])
    found = broken(history)
    assert list(found) == ["resume"], found
    assert words in found["resume"][0]


def test_a_resume_after_an_event_not_in_the_stream_is_reported() -> None:
    history = dataclasses.replace(clean(), resumes=[Resume(R, ("9-0",), ("2-0",), ("1-0", "2-0"))])
    assert list(broken(history)) == ["resume"]


def test_checkpoints_are_read_from_the_sdks_history() -> None:
    states: list[dict[str, Any]] = [
        {"metadata": {"step": 1, "source": "loop"}, "created_at": "2026-01-01T00:00:01+00:00"},
        {"metadata": {"step": 0}, "created_at": "2026-01-01T00:00:00+00:00"},
        {"metadata": None, "created_at": None},
    ]
    [one, zero] = checkpoints_from_history(T, states)
    assert (one.step, zero.step) == (1, 0)
    assert one.created_at - zero.created_at == 1.0


def test_a_resume_whose_stream_is_gone_is_still_checked_for_repeats_and_order() -> None:
    """The run's events were lost (a Redis that came back empty): a gap cannot be judged, a repeat can."""
    fine = Resume(R, ("1-0",), ("2-0",), ())
    repeated = Resume(R, ("1-0",), ("1-0", "2-0"), ())
    assert broken(dataclasses.replace(clean(), resumes=[fine])) == {}
    assert list(broken(dataclasses.replace(clean(), resumes=[repeated]))) == ["resume"]
