"""The official JavaScript client, ``@langchain/langgraph-sdk`` under Node, against a real server.

``tests/js/flows.mjs`` drives three flows with the JS ``Client`` and prints what the client saw as one JSON
document: a streamed run of ``tokens`` (values, messages-tuple and custom modes), a resumable run of
``tokens`` rejoined from the id of its second event and from ``-1``, and the ``approval`` interrupt answered
with a resume command sent beside ``input: {}``, as the chat UI sends it. The script runs once per module;
each test below checks one property of its output, so that a failure names exactly what the JS client got
wrong. The SDK version is pinned in ``tests/js/package-lock.json`` and installed with ``npm ci``.

Against the official in-memory server (0.16.7) the two tests that require distinct event ids fail: it numbers
events ``<ms>-0``, so two events in the same millisecond share an id.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness.embedded import Server
from tests.harness.sdk import as_dict

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(360)]

JS_DIR = Path(__file__).resolve().parents[1] / "js"
FLOWS = JS_DIR / "flows.mjs"
LOCKFILE = JS_DIR / "package-lock.json"
# npm ci rewrites this copy of the lock inside node_modules, so its age tells when the install was made.
INSTALLED_LOCK = JS_DIR / "node_modules" / ".package-lock.json"
NPM_CI_TIMEOUT_S = 240.0
FLOWS_TIMEOUT_S = 90.0
OUTPUT_TAIL_CHARS = 10_000

TOKENS = 5  # flows.mjs asks the `tokens` graph for this many tokens
ANSWER = " ".join(f"tok{i}" for i in range(TOKENS))


def _tail(text: str) -> str:
    return text[-OUTPUT_TAIL_CHARS:] or "(nothing)"


def _npm_ci(npm: str) -> None:
    """Install the locked JS dependencies unless ``node_modules`` already matches the lock."""
    if INSTALLED_LOCK.exists() and INSTALLED_LOCK.stat().st_mtime >= LOCKFILE.stat().st_mtime:
        return
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`npm ci` in {JS_DIR} took more than {NPM_CI_TIMEOUT_S}s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"`npm ci` in {JS_DIR} exited with {done.returncode}\n"
            f"--- stderr ---\n{_tail(done.stderr)}\n--- stdout ---\n{_tail(done.stdout)}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def node() -> str:
    """Path of ``node``, with the JS client installed next to ``flows.mjs``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        pytest.skip(
            f"{missing} not on PATH: install Node.js 20 or newer and npm (Debian: apt-get install nodejs npm)"
        )
    _npm_ci(npm)
    return node


@pytest.fixture(scope="module")
def flows(node: str, server: Server) -> dict[str, Any]:
    """What the JS client saw in the three flows (see ``tests/js/flows.mjs``), run once for the module."""
    env = {**os.environ, "NO_COLOR": "1"}
    try:
        done = subprocess.run(
            [node, str(FLOWS), server.url],
            cwd=JS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=FLOWS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(
            f"flows.mjs took more than {FLOWS_TIMEOUT_S}s\n--- stderr ---\n{_tail(stderr)}", pytrace=False
        )
    if done.returncode != 0:
        pytest.fail(
            f"flows.mjs exited with {done.returncode}: the JS client raised\n"
            f"--- stderr ---\n{_tail(done.stderr)}\n--- stdout ---\n{_tail(done.stdout)}",
            pytrace=False,
        )
    return as_dict(json.loads(done.stdout))


def _named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def _text(message_events: list[dict[str, Any]]) -> str:
    """The answer as a chat UI shows it: the concatenated contents of the ``[chunk, metadata]`` pairs."""
    return "".join(str(e["data"][0]["content"]) for e in message_events)


def _one_interrupt(thread: dict[str, Any]) -> dict[str, Any]:
    """The single interrupt a thread lists under ``interrupts`` (keyed by task id)."""
    listed = [i for per_task in as_dict(thread["interrupts"]).values() for i in per_task]
    assert len(listed) == 1, thread["interrupts"]
    return as_dict(listed[0])


def test_the_client_that_ran_is_the_pinned_one(flows: dict[str, Any]) -> None:
    locked = json.loads(LOCKFILE.read_text(encoding="utf-8"))
    assert flows["sdk_version"] == locked["packages"]["node_modules/@langchain/langgraph-sdk"]["version"]


def test_the_stream_opens_with_one_metadata_event_naming_the_run(flows: dict[str, Any]) -> None:
    """The run id in the first event is the one the client read from ``Content-Location``."""
    stream = flows["stream"]
    created = as_dict(stream["created"])
    assert created["thread_id"] == stream["thread_id"]
    first = stream["events"][0]
    assert first["event"] == "metadata"
    assert as_dict(first["data"])["run_id"] == created["run_id"]
    assert len(_named(stream["events"], "metadata")) == 1


def test_messages_tuple_chunks_arrive_as_messages_events_that_spell_the_answer(flows: dict[str, Any]) -> None:
    """On the wire the ``messages-tuple`` mode is named ``messages``; each event is ``[chunk, metadata]``."""
    events = flows["stream"]["events"]
    assert {e["event"] for e in events} == {"metadata", "values", "messages", "custom"}
    messages = _named(events, "messages")
    assert _text(messages) == ANSWER
    chunks = [as_dict(e["data"][0]) for e in messages]
    assert {c["type"] for c in chunks} == {"AIMessageChunk"}
    assert len({c["id"] for c in chunks}) == 1  # all pieces of one message
    assert {as_dict(e["data"][1])["langgraph_node"] for e in messages} == {"talk"}


def test_custom_events_carry_what_the_node_wrote_in_order(flows: dict[str, Any]) -> None:
    """``{"progress": 0}`` is written before the model streams, ``{"progress": 1}`` after."""
    events = flows["stream"]["events"]
    names = [e["event"] for e in events]
    assert [e["data"] for e in _named(events, "custom")] == [{"progress": 0}, {"progress": 1}]
    custom_at = [i for i, name in enumerate(names) if name == "custom"]
    messages_at = [i for i, name in enumerate(names) if name == "messages"]
    assert custom_at[0] < messages_at[0]
    assert custom_at[1] > messages_at[-1]


def test_values_go_from_the_input_to_the_answer(flows: dict[str, Any]) -> None:
    values = _named(flows["stream"]["events"], "values")
    first, last = as_dict(values[0]["data"]), as_dict(values[-1]["data"])
    assert [(m["type"], m["content"]) for m in first["messages"]] == [("human", "hi")]
    assert [(m["type"], m["content"]) for m in last["messages"]] == [("human", "hi"), ("ai", ANSWER)]


def test_a_resumable_stream_gives_the_client_an_id_for_every_message_event(flows: dict[str, Any]) -> None:
    resumable = flows["resumable"]
    events = resumable["events"]
    assert events[0]["event"] == "metadata"
    assert as_dict(events[0]["data"])["run_id"] == as_dict(resumable["created"])["run_id"]
    messages = _named(events, "messages")
    assert _text(messages) == ANSWER
    ids = [e["id"] for e in messages]
    assert all(isinstance(i, str) for i in ids), ids
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


def test_joining_from_an_event_id_replays_exactly_the_events_after_it(flows: dict[str, Any]) -> None:
    """``runs.joinStream`` from the second event's id: the rest of the run, each event once, nothing else."""
    resumable = flows["resumable"]
    events, joined = resumable["events"], resumable["joined"]
    assert resumable["last_event_id"] == events[1]["id"]
    assert joined == events[2:]
    joined_ids = [e["id"] for e in joined]
    assert len(set(joined_ids)) == len(joined_ids)
    assert _text(_named(events[:2], "messages") + _named(joined, "messages")) == ANSWER


def test_joining_from_minus_one_replays_every_event_of_the_run(flows: dict[str, Any]) -> None:
    """``lastEventId: "-1"`` (what a reloaded UI sends) gives the whole run again, with the same ids.

    The ``metadata`` event is left out of the comparison: the official server replays it (with an id) and
    graphrun does not, a known difference.
    """
    resumable = flows["resumable"]
    events, replayed = resumable["events"], resumable["replayed"]
    assert [e for e in replayed if e["event"] != "metadata"] == [
        e for e in events if e["event"] != "metadata"
    ]


def test_wait_returns_the_interrupt_with_its_schema(flows: dict[str, Any]) -> None:
    first = as_dict(flows["approval"]["first"])
    assert first["draft"] == "hello"
    assert "published" not in first
    [pending] = first["__interrupt__"]
    assert pending["value"] == {"question": "publish this draft?", "draft": "hello"}
    assert isinstance(pending["id"], str)
    assert pending["id"]
    assert as_dict(pending["response_schema"])["required"] == ["approved"]


def test_the_interrupted_thread_lists_the_same_interrupt(flows: dict[str, Any]) -> None:
    approval = flows["approval"]
    thread = as_dict(approval["interrupted"])
    assert thread["status"] == "interrupted"
    listed = _one_interrupt(thread)
    [returned] = as_dict(approval["first"])["__interrupt__"]
    assert (listed["id"], listed["value"]) == (returned["id"], returned["value"])


def test_a_resume_command_beside_an_empty_input_finishes_the_run(flows: dict[str, Any]) -> None:
    approval = flows["approval"]
    resumed = as_dict(approval["resumed"])
    assert "__interrupt__" not in resumed
    assert resumed["decision"] == {"approved": True, "note": "ok"}
    assert resumed["draft"] == "hello"
    assert resumed["published"] is True
    finished = as_dict(approval["finished"])
    assert (finished["status"], finished["interrupts"]) == ("idle", {})
    state = as_dict(approval["state"])
    assert as_dict(state["values"])["published"] is True
    assert state["next"] == []
