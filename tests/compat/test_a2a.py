"""A2A (``/a2a/{assistant_id}``, agent cards), driven by the official ``a2a-sdk`` client against a real
server in both modes, with API keys on (alice's tasks are not bob's).

Every expectation was first observed on the official server (``langgraph dev``, langgraph-api 0.16.7,
same graphs), but two: its ``SendStreamingMessage`` events are not wrapped as A2A 1.0 says (the SDK
reads them as empty), graphrun's are; and ``returnImmediately`` is not honoured on either.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types import CancelTaskRequest, GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from a2a.utils.errors import TaskNotFoundError
from google.protobuf import json_format  # type: ignore[import-untyped]  # no stubs; a2a-sdk brings it

from tests.harness.waiting import eventually

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(120)]

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-fedcba9876543210"
SERVER_ENV = {"GRAPHRUN_API_KEYS": f"alice={ALICE},bob={BOB}"}
CONFIG = Path(__file__).resolve().parent / "a2a.langgraph.json"

Json = dict[str, Any]


async def _assistant_id(http: httpx.AsyncClient, graph_id: str) -> str:
    found = (await http.post("/assistants/search", json={"graph_id": graph_id})).json()
    return str(found[0]["assistant_id"])


@contextlib.asynccontextmanager
async def _http(target: Any, key: str = ALICE) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.url, headers={"x-api-key": key}, timeout=60) as http:
        yield http


@contextlib.asynccontextmanager
async def _agent(
    target: Any, graph_id: str, *, key: str = ALICE, streaming: bool = False
) -> AsyncIterator[Client]:
    """The SDK's client for the graph's assistant, from its agent card."""
    async with _http(target, key) as http:
        assistant_id = await _assistant_id(http, graph_id)
        card = await A2ACardResolver(http, target.url).get_agent_card(
            relative_card_path=f"/.well-known/agent-card.json?assistant_id={assistant_id}"
        )
        yield ClientFactory(ClientConfig(streaming=streaming, httpx_client=http)).create(card)


def _message(text: str, *, task: Any = None) -> SendMessageRequest:
    message = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    if task is not None:
        message.task_id, message.context_id = task.id, task.context_id
    return SendMessageRequest(message=message)


async def _send(client: Client, request: SendMessageRequest) -> list[Json]:
    return [json_format.MessageToDict(event) async for event in client.send_message(request)]


def _texts(parts: list[Json]) -> list[str]:
    return [p["text"] for p in parts if "text" in p]


# ---------------------------------------------------------------- agent cards


async def test_an_agent_card_describes_the_assistant(target: Any) -> None:
    async with _http(target) as http:
        assistant_id = await _assistant_id(http, "echoes")
        answer = await http.get("/.well-known/agent-card.json", params={"assistant_id": assistant_id})
        assert answer.status_code == 200
        card = answer.json()
        assert (await http.get(f"/a2a/{assistant_id}")).json()["skills"] == card["skills"]
        missing = await http.get("/.well-known/agent-card.json")
        unknown = await http.get("/.well-known/agent-card.json", params={"assistant_id": str(uuid.uuid4())})
    assert (card["name"], card["description"]) == ("echoes", "echoes assistant")
    assert card["url"] == f"{target.url}/a2a/{assistant_id}"
    assert card["supportedInterfaces"] == [
        {"url": card["url"], "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ]
    assert card["capabilities"]["streaming"] is True
    assert card["defaultInputModes"] == card["defaultOutputModes"] == ["application/json", "text/plain"]
    [skill] = card["skills"]
    assert skill["id"] == f"{assistant_id}-main"
    assert skill["metadata"]["inputSchema"] == {
        "required": ["messages"],
        "properties": ["messages"],
        "supportsA2A": True,
    }
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "code": -32602,
        "message": "Missing required query parameter: assistant_id",
    }
    assert unknown.status_code == 400
    assert "not found" in unknown.json()["error"]["message"]


# ---------------------------------------------------------------- send, get, stream


async def test_a_message_is_a_run_answered_as_a_completed_task(target: Any) -> None:
    async with _agent(target, "echoes") as client:
        [event] = await _send(client, _message("hello"))
        task = event["task"]
        got = json_format.MessageToDict(await client.get_task(GetTaskRequest(id=task["id"])))
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    [artifact] = task["artifacts"]
    assert (artifact["name"], _texts(artifact["parts"])) == ("Assistant Response", ["you said: hello"])
    assert [(m["role"], _texts(m["parts"])) for m in task["history"]] == [
        ("ROLE_USER", ["hello"]),
        ("ROLE_AGENT", ["you said: hello"]),
    ]
    assert {m["taskId"] for m in task["history"]} == {task["id"]}
    assert got["status"]["state"] == "TASK_STATE_COMPLETED"
    assert _texts(got["status"]["message"]["parts"]) == ["Task completed successfully"]
    assert got["history"] == task["history"]

    # The task is a run on the thread its context names, executed by the worker like any other.
    context_id, run_id = task["id"].split(":")
    assert context_id == task["contextId"]
    async with _http(target) as http:
        run = (await http.get(f"/threads/{context_id}/runs/{run_id}")).json()
        thread = (await http.get(f"/threads/{context_id}")).json()
    assert run["status"] == "success"
    assert [m["content"] for m in thread["values"]["messages"]] == ["hello", "you said: hello"]


async def test_a_streamed_message_goes_submitted_working_then_completed(target: Any) -> None:
    async with _agent(target, "echoes", streaming=True) as client:
        events = await _send(client, _message("hi"))
    assert list(events[0]) == ["task"]
    assert events[0]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert [_texts(m["parts"]) for m in events[0]["task"]["history"]] == [["hi"]]
    kinds = [next(iter(e)) for e in events[1:]]
    assert kinds == ["statusUpdate", "artifactUpdate", "statusUpdate"]
    working, artifact, final = (e[k] for e, k in zip(events[1:], kinds, strict=True))
    assert working["status"]["state"] == "TASK_STATE_WORKING"
    assert _texts(working["status"]["message"]["parts"]) == ["you said: hi"]
    assert _texts(artifact["artifact"]["parts"]) == ["you said: hi"]
    assert final["status"]["state"] == "TASK_STATE_COMPLETED"
    assert {working["taskId"], artifact["taskId"], final["taskId"]} == {events[0]["task"]["id"]}


# ---------------------------------------------------------------- human in the loop


async def test_an_interrupt_asks_for_input_and_the_next_message_answers_it(target: Any) -> None:
    async with _agent(target, "approves") as client:
        [asked] = await _send(client, _message("the plan"))
        task = asked["task"]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        [artifact] = task["artifacts"]
        assert artifact["name"] == "Interrupt"
        assert artifact["parts"][0]["data"]["value"] == {"question": "approve the plan?"}

        pending = await client.get_task(GetTaskRequest(id=task["id"]))
        assert pending.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        [answered] = await _send(client, _message("yes", task=pending))
    done = answered["task"]
    assert (done["id"], done["contextId"]) == (task["id"], task["contextId"]), "the same task goes on"
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert _texts(done["artifacts"][0]["parts"]) == ["approved: yes"]
    async with _http(target) as http:
        runs = (await http.get(f"/threads/{task['contextId']}/runs")).json()
    assert [r["status"] for r in runs] == ["success", "success"], "the answer resumed the run's thread"

    async with _agent(target, "approves") as client:
        with pytest.raises(Exception, match="terminal task"):
            await _send(client, _message("again", task=pending))


# ---------------------------------------------------------------- cancel


async def test_a_running_task_is_cancelled(target: Any) -> None:
    async with _http(target) as http:
        assistant_id = await _assistant_id(http, "sleeps")
        body = {
            "jsonrpc": "2.0",
            "id": "s",
            "method": "SendStreamingMessage",
            "params": {"message": {"role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "sleep 30"}]}},
        }
        headers = {"accept": "text/event-stream"}
        frames: list[Json] = []
        async with http.stream("POST", f"/a2a/{assistant_id}", json=body, headers=headers) as stream:
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("data:"):
                    frames.append(orjson.loads(line[5:]))
                    break
            task_id = frames[0]["result"]["task"]["id"]
            context_id, run_id = task_id.split(":")
            await eventually(
                lambda: http.get(f"/threads/{context_id}/runs/{run_id}"),
                lambda r: r.json()["status"] == "running",
                what="the run to start",
            )
            async with _agent(target, "sleeps") as client:
                cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
                assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
                async for line in lines:
                    if line.startswith("data:"):
                        frames.append(orjson.loads(line[5:]))
                got = await client.get_task(GetTaskRequest(id=task_id))
                again = await http.post(
                    f"/a2a/{assistant_id}",
                    json={"jsonrpc": "2.0", "id": 2, "method": "CancelTask", "params": {"id": task_id}},
                    headers={"accept": "application/json"},
                )
    assert frames[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert got.status.state == TaskState.TASK_STATE_CANCELED
    assert again.json()["error"]["code"] == -32002


# ---------------------------------------------------------------- owners


async def test_another_owner_cannot_reach_a_task(target: Any) -> None:
    async with _agent(target, "echoes") as alice:
        [event] = await _send(alice, _message("secret"))
    task = event["task"]
    async with _agent(target, "echoes", key=BOB) as bob:
        with pytest.raises(TaskNotFoundError):
            await bob.get_task(GetTaskRequest(id=task["id"]))
        with pytest.raises(TaskNotFoundError):
            await bob.cancel_task(CancelTaskRequest(id=task["id"]))
        message = Message(
            role=Role.ROLE_USER, message_id="m", parts=[Part(text="mine now")], context_id=task["contextId"]
        )
        with pytest.raises(Exception, match=r"not found|Not Found|exists"):
            await _send(bob, SendMessageRequest(message=message))
    async with _http(target) as http:
        thread = (await http.get(f"/threads/{task['contextId']}")).json()
        assistant_id = await _assistant_id(http, "echoes")
    assert len(thread["values"]["messages"]) == 2, "bob's message reached nothing"
    async with httpx.AsyncClient(base_url=target.url) as anonymous:
        card = await anonymous.get("/.well-known/agent-card.json", params={"assistant_id": assistant_id})
        rpc = await anonymous.post(
            f"/a2a/{assistant_id}", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask"}
        )
    assert (card.status_code, rpc.status_code) == (401, 401)


# ---------------------------------------------------------------- A2A 0.3 names, bad input


async def _rpc(
    http: httpx.AsyncClient, assistant_id: str, body: Any, accept: str = "application/json"
) -> Json:
    answer = await http.post(f"/a2a/{assistant_id}", content=orjson.dumps(body), headers={"accept": accept})
    assert answer.status_code == 200, answer.text
    found: Json = answer.json()
    return found


async def test_the_0_3_method_names_answer_in_the_0_3_spelling(target: Any) -> None:
    message = {"role": "user", "messageId": str(uuid.uuid4()), "parts": [{"kind": "text", "text": "plan b"}]}
    async with _http(target) as http:
        assistant_id = await _assistant_id(http, "approves")
        sent = await _rpc(
            http,
            assistant_id,
            {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}},
        )
        task = sent["result"]
        got = await _rpc(
            http,
            assistant_id,
            {"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task["id"]}},
        )
    assert (task["kind"], task["status"]["state"]) == ("task", "input-required")
    assert [m["role"] for m in task["history"]] == ["user"]
    assert got["result"]["status"]["state"] == "input-required"


async def test_bad_requests_get_json_rpc_errors(target: Any) -> None:
    async with _http(target) as http:
        assistant_id = await _assistant_id(http, "echoes")

        async def code(body: Any, to: str = assistant_id) -> int:
            answer = await http.post(f"/a2a/{to}", content=body, headers={"accept": "application/json"})
            assert answer.status_code == 200, answer.text
            return int(answer.json()["error"]["code"])

        def rpc(method: str, params: Json) -> bytes:
            return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

        no_id = {"role": "ROLE_USER", "parts": [{"text": "x"}]}
        assert await code(b"{nope") == -32700
        assert await code(b"[]") == -32600
        assert await code(orjson.dumps({"jsonrpc": "1.0", "id": 1, "method": "GetTask"})) == -32600
        assert await code(rpc("ListEverything", {})) == -32601
        assert await code(rpc("GetTask", {"id": "x"}), to="not-a-uuid") == -32602
        assert await code(rpc("SendMessage", {"message": no_id})) == -32602
        assert await code(rpc("GetTask", {"id": f"{uuid.uuid4()}:{uuid.uuid4()}"})) == -32001
        assert await code(rpc("GetTask", {"id": "x", "historyLength": 11})) == -32001
        assert (
            await code(rpc("SendMessage", {"message": {**no_id, "messageId": "m", "parts": [{"file": {}}]}}))
            == -32005
        )
        unknown = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
        assert await code(orjson.dumps(unknown), to=str(uuid.uuid4())) == -32001
        refused = await http.post(
            f"/a2a/{assistant_id}", content=rpc("GetTask", {"id": "x"}), headers={"accept": "text/html"}
        )
    assert refused.status_code == 400
    assert refused.json() == {"error": "Accept header must include application/json"}
