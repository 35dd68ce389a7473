"""Bad input: a malformed request gets a 4xx whose message names the problem, never a 500, and writes nothing.

Raw HTTP is used for the bodies the SDK would never send. Each test snapshots what could have been written
(threads, runs of a thread, assistants) before the request and compares afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.harness.sdk import system_assistant_id

from ._support import GRAPH_IDS

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must leave as it was: counts, the thread's row, runs and state head."""

    threads: int
    assistants: int
    runs: tuple[tuple[str, str], ...]
    thread: object
    state: object


async def snapshot(client: LangGraphClient, thread_id: str) -> Snapshot:
    runs = await client.runs.list(thread_id, limit=100)
    return Snapshot(
        threads=await client.threads.count(),
        assistants=await client.assistants.count(),
        runs=tuple((r["run_id"], r["status"]) for r in runs),
        thread=await client.threads.get(thread_id),
        state=await client.threads.get_state(thread_id),
    )


def assert_refused(r: httpx.Response, status: int | None = None, *, names: tuple[str, ...] = ()) -> None:
    """A 4xx (``status`` exactly, if given) whose body mentions every one of ``names`` (case-insensitive)."""
    assert 400 <= r.status_code < 500, f"expected a 4xx, got {r.status_code}: {r.text}"
    if status is not None:
        assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    text = r.text.lower()
    for name in names:
        assert name.lower() in text, f"the error message does not mention {name!r}: {r.text}"


@pytest.fixture
async def thread_id(client: LangGraphClient) -> str:
    """An existing thread on which one run already succeeded."""
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "counter", input={"count": 0})
    return tid


# --- malformed bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"assistant_id": "echo",'])
async def test_malformed_json_body(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str, body: bytes
) -> None:
    before = await snapshot(client, thread_id)
    headers = {"content-type": "application/json"}

    r_thread = await http.post("/threads", content=body, headers=headers)
    r_run = await http.post(f"/threads/{thread_id}/runs", content=body, headers=headers)

    # Official: 422 {"detail": "Invalid JSON in request body"}.
    assert_refused(r_thread, 422, names=("json",))
    assert_refused(r_run, 422, names=("json",))
    assert await snapshot(client, thread_id) == before


async def test_body_that_is_not_an_object(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str
) -> None:
    before = await snapshot(client, thread_id)

    r = await http.post(f"/threads/{thread_id}/runs", json=[1, 2])

    assert_refused(r, 422)
    assert await snapshot(client, thread_id) == before


# --- missing required fields --------------------------------------------------------------------------------


async def test_run_without_assistant_id(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str
) -> None:
    before = await snapshot(client, thread_id)

    r_wait = await http.post(f"/threads/{thread_id}/runs/wait", json={"input": {"count": 0}})
    r_stateless = await http.post("/runs", json={"input": {"count": 0}})

    assert_refused(r_wait, 422, names=("assistant_id",))
    assert_refused(r_stateless, 422, names=("assistant_id",))
    assert await snapshot(client, thread_id) == before


async def test_assistant_without_graph_id(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str
) -> None:
    before = await snapshot(client, thread_id)

    r = await http.post("/assistants", json={"name": "nameless"})

    assert_refused(r, 422, names=("graph_id",))
    assert await snapshot(client, thread_id) == before


async def test_store_item_without_key(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    namespace = ["bad-input", uuid4().hex]

    r = await http.put("/store/items", json={"namespace": namespace, "value": {"v": 1}})

    assert_refused(r, 422, names=("key",))
    assert (await client.store.search_items(namespace))["items"] == []


async def test_store_search_filter_with_an_integer_beyond_64_bits(http: httpx.AsyncClient) -> None:
    """The stores encode filters with orjson, which raised TypeError (a 500) for such a number."""
    r = await http.post(
        "/store/items/search", json={"namespace_prefix": ["n"], "filter": {"a": {"b": 2**70}}}
    )

    assert_refused(r, 422, names=("filter.a.b", "64 bits"))


# --- wrong types and values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "names"),
    [
        ("/threads", {"metadata": "not an object"}, ("metadata",)),
        ("/threads/search", {"limit": "ten"}, ("limit",)),
        ("/threads/search", {"limit": -1}, ("limit",)),
        ("/assistants/search", {"limit": "ten"}, ("limit",)),
        ("/assistants", {"graph_id": "echo", "config": "not an object"}, ("config",)),
    ],
)
async def test_wrong_types(
    client: LangGraphClient,
    http: httpx.AsyncClient,
    thread_id: str,
    path: str,
    body: dict[str, Any],
    names: tuple[str, ...],
) -> None:
    before = await snapshot(client, thread_id)

    r = await http.post(path, json=body)

    assert_refused(r, 422, names=names)
    assert await snapshot(client, thread_id) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("multitask_strategy", "bogus-strategy"),
        ("if_not_exists", "bogus-choice"),
        ("metadata", "bogus-metadata"),
    ],
)
async def test_wrong_run_field_values(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str, field: str, value: str
) -> None:
    before = await snapshot(client, thread_id)

    r = await http.post(
        f"/threads/{thread_id}/runs", json={"assistant_id": "counter", "input": {}, field: value}
    )

    assert_refused(r, 422, names=(value,))
    assert await snapshot(client, thread_id) == before


@pytest.mark.parametrize("stream_mode", ["bogus-mode", ["values", "bogus-mode"]])
async def test_unknown_stream_mode(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str, stream_mode: str | list[str]
) -> None:
    before = await snapshot(client, thread_id)
    body = {"assistant_id": "counter", "input": {"count": 0}, "stream_mode": stream_mode}

    r_stream = await http.post(f"/threads/{thread_id}/runs/stream", json=body)
    r_create = await http.post(f"/threads/{thread_id}/runs", json=body)

    assert_refused(r_stream, 422, names=("bogus-mode", "stream_mode"))
    assert_refused(r_create, 422, names=("bogus-mode", "stream_mode"))
    assert await snapshot(client, thread_id) == before


async def test_unknown_top_level_run_field(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str
) -> None:
    # Reference notes: "An unsupported field must be refused with a clear 4xx, never silently dropped."
    # (The official server 0.16.7 ignores unknown fields; graphrun deliberately refuses them.)
    before = await snapshot(client, thread_id)
    body = {"assistant_id": "counter", "input": {"count": 0}, "frobnicate": True}

    r_create = await http.post(f"/threads/{thread_id}/runs", json=body)
    r_wait = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    r_stateless = await http.post("/runs/wait", json=body)

    for r in (r_create, r_wait, r_stateless):
        assert_refused(r, names=("frobnicate",))
    assert await snapshot(client, thread_id) == before


# --- unknown things -----------------------------------------------------------------------------------------


async def test_unknown_assistant_name(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str
) -> None:
    before = await snapshot(client, thread_id)
    body = {"assistant_id": "no-such-graph", "input": {}}

    r_stateless = await http.post("/runs/wait", json=body)
    r_thread = await http.post(f"/threads/{thread_id}/runs", json=body)

    # Official: 422 "Invalid assistant: 'x'. Must be either: a valid assistant UUID, or one of the registered
    # graphs: …" (reference notes).
    for r in (r_stateless, r_thread):
        assert_refused(r, 422, names=("no-such-graph", *GRAPH_IDS))
    assert await snapshot(client, thread_id) == before


async def test_unknown_assistant_uuid(
    client: LangGraphClient, http: httpx.AsyncClient, thread_id: str
) -> None:
    before = await snapshot(client, thread_id)
    body = {"assistant_id": str(uuid4()), "input": {}}

    r_stateless = await http.post("/runs/wait", json=body)
    r_thread = await http.post(f"/threads/{thread_id}/runs", json=body)
    r_get = await http.get(f"/assistants/{uuid4()}")

    # Official: 404 {"detail": "Thread or assistant not found."} (reference notes).
    for r in (r_stateless, r_thread, r_get):
        assert_refused(r, 404, names=("not found",))
    assert_refused(r_stateless, names=("assistant",))
    assert await snapshot(client, thread_id) == before


async def test_unknown_thread(client: LangGraphClient, http: httpx.AsyncClient, thread_id: str) -> None:
    before = await snapshot(client, thread_id)
    missing = str(uuid4())

    responses = [
        await http.get(f"/threads/{missing}"),
        await http.get(f"/threads/{missing}/state"),
        await http.post(f"/threads/{missing}/history", json={}),
        await http.get(f"/threads/{missing}/runs"),
        await http.patch(f"/threads/{missing}", json={"metadata": {"a": 1}}),
        await http.delete(f"/threads/{missing}"),
        # if_not_exists defaults to "reject": 404 for an unknown thread (reference notes).
        await http.post(
            f"/threads/{missing}/runs/wait", json={"assistant_id": "counter", "input": {"count": 0}}
        ),
        await http.post(f"/threads/{missing}/runs", json={"assistant_id": "counter", "input": {"count": 0}}),
    ]

    # Every answer names what is missing. Stricter than the official server, whose PATCH answers a bare
    # "Not Found"; its other answers say "Thread with ID … not found" or "Thread or assistant not found.".
    for r in responses:
        assert_refused(r, 404, names=("thread", "not found"))
    assert (await http.get(f"/threads/{missing}")).status_code == 404  # no run created it on the way
    assert await snapshot(client, thread_id) == before


async def test_if_not_exists_create_makes_the_thread(client: LangGraphClient) -> None:
    # The counterpart of the rejection above: asking for creation is what creates it.
    missing = str(uuid4())
    out = await client.runs.wait(missing, "counter", input={"count": 0}, if_not_exists="create")
    assert out == {"count": 2, "trail": ["a", "b"]}
    assert (await client.threads.get(missing))["status"] == "idle"


async def test_unknown_run(client: LangGraphClient, http: httpx.AsyncClient, thread_id: str) -> None:
    before = await snapshot(client, thread_id)
    missing = str(uuid4())

    r_get = await http.get(f"/threads/{thread_id}/runs/{missing}")
    r_delete = await http.delete(f"/threads/{thread_id}/runs/{missing}")
    r_cancel = await http.post(f"/threads/{thread_id}/runs/{missing}/cancel")

    # Every answer names what is missing. Stricter than the official server, whose GET answers a bare
    # "Not Found"; DELETE says "Run not found", cancel "No runs found to cancel.".
    for r in (r_get, r_delete, r_cancel):
        assert_refused(r, 404, names=("run",))
    assert await snapshot(client, thread_id) == before


async def test_non_uuid_ids(client: LangGraphClient, http: httpx.AsyncClient, thread_id: str) -> None:
    before = await snapshot(client, thread_id)

    thread_requests = [
        await http.get("/threads/not-a-uuid"),
        await http.get("/threads/not-a-uuid/state"),
        await http.post("/threads/not-a-uuid/runs", json={"assistant_id": "counter", "input": {}}),
        await http.post("/threads", json={"thread_id": "not-a-uuid"}),
    ]
    r_run = await http.get(f"/threads/{thread_id}/runs/not-a-uuid")

    # Official: 422 "Invalid thread ID: must be a UUID" / "Invalid run ID: must be a UUID".
    for r in thread_requests:
        assert_refused(r, 422, names=("thread",))
    assert_refused(thread_requests[0], 422, names=("uuid",))
    assert_refused(r_run, 422, names=("run", "uuid"))
    assert await snapshot(client, thread_id) == before


async def test_system_assistant_survives_bad_requests(client: LangGraphClient) -> None:
    # A sanity check that the requests above did not break the graphs they named.
    out = await client.runs.wait(None, system_assistant_id("counter"), input={"count": 1})
    assert out == {"count": 3, "trail": ["a", "b"]}


async def test_a_nul_in_a_query_parameter_is_refused_like_one_in_a_body(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = (await client.threads.create())["thread_id"]

    response = await http.get(f"/threads/{thread_id}/history", params={"before": "\x00"})

    assert response.status_code == 422
    assert "before" in response.json()["detail"]
    assert "NUL" in response.json()["detail"]
