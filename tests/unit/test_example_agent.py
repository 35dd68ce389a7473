"""Tests for the example agent in examples/agent, run entirely on the offline model.

The example is not a package (the server puts its directory on sys.path, as the
``dependencies`` entry of langgraph.json asks), so the tests load it the same way.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

AGENT_DIR = Path(__file__).resolve().parents[2] / "examples" / "agent"
SIBLING_MODULES = ("model", "offline_model", "tools")
PROVIDER_ENV_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENT_MODEL", "OPENAI_BASE_URL")


@dataclass(frozen=True)
class Example:
    """The example's modules, loaded fresh for one test."""

    agent: ModuleType
    model: ModuleType
    offline_model: ModuleType
    tools: ModuleType


def _forget_siblings() -> None:
    """Drop the example's top-level modules so each test imports (and caches) afresh."""
    for name in SIBLING_MODULES:
        module = sys.modules.get(name)
        if module is not None and Path(getattr(module, "__file__", "") or "").parent == AGENT_DIR:
            del sys.modules[name]


def _load_agent() -> ModuleType:
    """Import agent.py by path under a unique name, as the server loads graph files."""
    spec = importlib.util.spec_from_file_location("example_agent_under_test", AGENT_DIR / "agent.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[Example]:
    """Load the example with no provider keys, so get_model() must choose the offline model."""
    for name in PROVIDER_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    _forget_siblings()
    sys.path.insert(0, str(AGENT_DIR))
    try:
        agent = _load_agent()
        yield Example(
            agent=agent,
            model=sys.modules["model"],
            offline_model=sys.modules["offline_model"],
            tools=sys.modules["tools"],
        )
    finally:
        sys.path.remove(str(AGENT_DIR))
        _forget_siblings()


def _compile(example: Example, store: InMemoryStore | None = None) -> Any:
    """Compile with an in-memory saver (and store), standing in for the persistence the server attaches."""
    return example.agent.build_agent(InMemorySaver(), store)


def _thread(thread_id: str) -> dict[str, Any]:
    """Config for one conversation thread."""
    return {"configurable": {"thread_id": thread_id}}


def test_exported_graph_has_no_checkpointer(example: Example) -> None:
    """The server attaches its own saver, so the shipped graph must not bring one."""
    assert example.agent.graph.checkpointer is None
    assert example.agent.graph.store is None
    assert {"model", REVIEW, "tools"} <= set(example.agent.graph.nodes)


async def test_calculation_calls_calculator_and_reports_result(example: Example) -> None:
    """An arithmetic question goes model -> calculator -> model and ends with the answer."""
    graph = _compile(example)
    result = await graph.ainvoke({"messages": [HumanMessage("What is (12 + 30) * 2?")]}, _thread("calc"))
    messages: list[BaseMessage] = result["messages"]

    request, tool_result, answer = messages[1], messages[2], messages[-1]
    assert isinstance(request, AIMessage)
    assert [(call["name"], call["args"]) for call in request.tool_calls] == [
        ("calculator", {"expression": "(12 + 30) * 2"})
    ]
    assert isinstance(tool_result, ToolMessage)
    assert tool_result.content == "84"
    assert tool_result.tool_call_id == request.tool_calls[0]["id"]
    assert isinstance(answer, AIMessage)
    assert not answer.tool_calls
    assert answer.text == "The result is 84."


async def test_plain_message_gets_echo_reply(example: Example) -> None:
    """Without a recognised intent the offline model echoes and points at the API keys."""
    graph = _compile(example)
    result = await graph.ainvoke({"messages": [HumanMessage("hello there")]}, _thread("echo"))
    messages: list[BaseMessage] = result["messages"]

    assert len(messages) == 2
    assert messages[-1].text == f"You said: hello there. {example.offline_model.OFFLINE_NOTICE}"


async def test_messages_stream_mode_yields_tokens(example: Example) -> None:
    """stream_mode="messages" must forward several token chunks for a single reply."""
    graph = _compile(example)
    tokens: list[str] = []
    async for chunk, metadata in graph.astream(
        {"messages": [HumanMessage("hello there")]}, _thread("stream"), stream_mode="messages"
    ):
        if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "model" and chunk.text:
            tokens.append(chunk.text)

    state = await graph.aget_state(_thread("stream"))
    assert len(tokens) > 1
    assert "".join(tokens) == state.values["messages"][-1].text


@pytest.mark.parametrize(
    "history",
    [
        [HumanMessage("What is 7 * 6?")],
        [HumanMessage("What's the weather in New York today?")],
        [HumanMessage("what time is it in Europe/Paris?")],
        [HumanMessage("good morning")],
        [HumanMessage("Email ann@example.com about lunch saying See you at noon.")],
        [
            HumanMessage("What is 7 * 6?"),
            AIMessage(
                "", tool_calls=[{"name": "calculator", "args": {"expression": "7 * 6"}, "id": "call_1"}]
            ),
            ToolMessage("42", tool_call_id="call_1", name="calculator"),
        ],
    ],
    ids=["calculation", "weather", "time", "echo", "email", "tool-result"],
)
async def test_offline_model_streamed_and_invoked_outputs_agree(
    example: Example, history: list[BaseMessage]
) -> None:
    """Streaming must not change the answer, tool calls included (built from tool_call_chunks)."""
    model = example.offline_model.OfflineChatModel().bind_tools(example.tools.TOOLS)
    invoked = await model.ainvoke(history)
    chunks = [chunk async for chunk in model.astream(history)]
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk

    assert isinstance(streamed, AIMessageChunk)
    assert streamed.text == invoked.text
    assert streamed.tool_calls == invoked.tool_calls
    assert streamed.response_metadata["finish_reason"] == invoked.response_metadata["finish_reason"]
    assert [chunk.text for chunk in model.stream(history)] == [chunk.text for chunk in chunks]


def test_offline_model_only_calls_bound_tools(example: Example) -> None:
    """Without bind_tools there is nothing to call, so arithmetic is echoed instead."""
    reply = example.offline_model.OfflineChatModel().invoke([HumanMessage("What is 7 * 6?")])
    assert not reply.tool_calls
    assert reply.text.startswith("You said: What is 7 * 6?")


def test_get_model_is_offline_without_keys(example: Example) -> None:
    """No provider key means the deterministic offline model, with no network involved."""
    assert isinstance(example.model.get_model(), example.offline_model.OfflineChatModel)


def test_get_model_prefers_openai_and_honours_agent_model(
    example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AGENT_MODEL names without a known provider prefix (Ollama-style 'x:8b') stay whole."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("AGENT_MODEL", "llama3.1:8b")
    model = example.model.get_model()
    assert type(model).__name__ == "ChatOpenAI"
    assert model.model_name == "llama3.1:8b"


def test_get_model_uses_anthropic_default(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only an Anthropic key the Anthropic default model is used."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    model = example.model.get_model()
    assert type(model).__name__ == "ChatAnthropic"
    assert model.model == "claude-3-5-haiku-latest"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(2 + 3) * 4", "20"),
        ("10 / 4", "2.5"),
        ("-3 + 1", "-2"),
        ("1 / 0", "Error: division by zero"),
    ],
)
def test_calculator_arithmetic(example: Example, expression: str, expected: str) -> None:
    """The calculator handles + - * / and reports errors as text the model can relay."""
    assert example.tools.calculator.invoke({"expression": expression}) == expected


@pytest.mark.parametrize("expression", ["__import__('os')", "2 ** 10", "x + 1", "1; 2"])
def test_calculator_rejects_everything_else(example: Example, expression: str) -> None:
    """Anything beyond plain arithmetic is refused rather than evaluated."""
    assert example.tools.calculator.invoke({"expression": expression}).startswith("Error:")


# --- send_email: a human approves, edits or rejects it before it runs ---------------------------------------

EMAIL_REQUEST = "Send an email to ann@example.com about the launch saying We ship on Friday."
DRAFT = {"to": "ann@example.com", "subject": "the launch", "body": "We ship on Friday."}


def _outbox(store: InMemoryStore, thread_id: str) -> list[dict[str, Any]]:
    """What send_email filed for one thread: one entry per email actually sent."""
    return [item.value for item in store.search(("outbox", thread_id))]


async def _ask_for_email(graph: Any, thread_id: str) -> Any:
    """Run the email request until the graph pauses for review; return the paused state."""
    await graph.ainvoke({"messages": [HumanMessage(EMAIL_REQUEST)]}, _thread(thread_id))
    return await graph.aget_state(_thread(thread_id))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EMAIL_REQUEST, ("send_email", DRAFT)),
        (
            "email bob@example.org about the weather in Paris",
            (
                "send_email",
                {"to": "bob@example.org", "subject": "the weather in Paris", "body": "the weather in Paris."},
            ),
        ),
        (
            "Please e-mail joe@example.net saying: 'running late'",
            (
                "send_email",
                {"to": "joe@example.net", "subject": "A note from your assistant", "body": "running late"},
            ),
        ),
        ("Send an email to Ann", "Who should I email? Please give me their address."),
    ],
    ids=["full", "about-only", "saying-only", "no-address"],
)
def test_offline_model_reads_email_requests(example: Example, text: str, expected: object) -> None:
    """'email' plus an address gives a send_email call (even about the weather); no address, a question."""
    assert example.offline_model._detect_intent(text) == expected


REVIEW = "HumanInTheLoopMiddleware.after_model"  # the node that asks the human


def _decide(*decisions: dict[str, Any]) -> Command[Any]:
    """The resume LangChain's human-in-the-loop middleware takes: one decision per action request."""
    return Command(resume={"decisions": list(decisions)})


async def test_email_request_pauses_before_sending(example: Example) -> None:
    """The run stops with LangChain's human-in-the-loop request for the email; nothing is sent yet."""
    store = InMemoryStore()
    graph = _compile(example, store)

    state = await _ask_for_email(graph, "pause")

    assert state.next == (REVIEW,)
    [pending] = state.interrupts
    assert isinstance(state.values["messages"][-1], AIMessage)
    assert pending.value == {
        "action_requests": [
            {
                "name": "send_email",
                "args": DRAFT,
                "description": "The assistant wants to send this email. Approve, edit or reject it.",
            }
        ],
        "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}],
    }
    assert _outbox(store, "pause") == []


async def test_approve_sends_the_email_as_drafted_once(example: Example) -> None:
    """Approve runs send_email with the model's arguments, exactly once, and the model confirms."""
    store = InMemoryStore()
    graph = _compile(example, store)
    await _ask_for_email(graph, "approve")

    result = await graph.ainvoke(_decide({"type": "approve"}), _thread("approve"))

    messages: list[BaseMessage] = result["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    sent = messages[2]
    assert isinstance(sent, ToolMessage)
    assert sent.status == "success"
    assert sent.text == "Email sent to ann@example.com with the subject 'the launch'"
    assert messages[-1].text == "Done. Email sent to ann@example.com with the subject 'the launch'."
    [email] = _outbox(store, "approve")
    assert {key: email[key] for key in DRAFT} == DRAFT
    assert email["tool_call_id"] == sent.tool_call_id
    assert (await graph.aget_state(_thread("approve"))).next == ()


async def test_edit_sends_the_reviewers_version_once(example: Example) -> None:
    """Edit runs send_email with the reviewer's arguments instead of the model's, exactly once."""
    store = InMemoryStore()
    graph = _compile(example, store)
    await _ask_for_email(graph, "edit")
    edited = {"to": "team@example.com", "subject": "Launch date", "body": "We ship on Monday."}

    action = {"name": "send_email", "args": edited}
    result = await graph.ainvoke(_decide({"type": "edit", "edited_action": action}), _thread("edit"))

    messages: list[BaseMessage] = result["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert messages[2].text.endswith("Email sent to team@example.com with the subject 'Launch date'")
    assert messages[-1].text.startswith("Done.")
    [email] = _outbox(store, "edit")
    assert {key: email[key] for key in edited} == edited


async def test_reject_sends_nothing_and_the_model_says_so(example: Example) -> None:
    """Reject never runs send_email; the model gets a rejection tool message and relays the reason."""
    store = InMemoryStore()
    graph = _compile(example, store)
    state = await _ask_for_email(graph, "reject")
    call_id = state.values["messages"][-1].tool_calls[0]["id"]

    result = await graph.ainvoke(
        _decide({"type": "reject", "message": "the date is not final"}), _thread("reject")
    )

    messages: list[BaseMessage] = result["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    refusal = messages[2]
    assert isinstance(refusal, ToolMessage)
    assert (refusal.status, refusal.name, refusal.tool_call_id) == ("error", "send_email", call_id)
    assert refusal.text == "User rejected the tool call for `send_email` with reason: the date is not final"
    assert messages[-1].text == f"Understood, I did not go ahead. {refusal.text}."
    assert _outbox(store, "reject") == []


@pytest.mark.parametrize(
    "resume",
    [
        {"decisions": [{"type": "maybe"}]},
        {"decisions": [{"type": "respond", "message": "sent it myself"}]},
        {"decisions": []},
    ],
    ids=["unknown-decision", "decision-not-allowed", "no-decision"],
)
async def test_a_malformed_decision_fails_before_anything_runs(
    example: Example, resume: dict[str, Any]
) -> None:
    """The middleware refuses an answer as it applies it, before anything runs. LangGraph keeps the bad
    answer as the interrupt's, so the thread cannot be answered again: graphrun refuses such an answer
    with 422 before it writes a run (api/_resume.py)."""
    store = InMemoryStore()
    graph = _compile(example, store)
    await _ask_for_email(graph, "bad")

    with pytest.raises(ValueError, match="decision"):
        await graph.ainvoke(Command(resume=resume), _thread("bad"))

    state = await graph.aget_state(_thread("bad"))
    assert state.next == (REVIEW,)
    assert _outbox(store, "bad") == []


async def test_guarded_calls_are_reviewed_together_and_only_approved_calls_run(example: Example) -> None:
    """In a turn with two emails and a sum, both emails are in one request, in order; the sum runs unasked."""
    store = InMemoryStore()
    graph = _compile(example, store)
    first = {"to": "a@example.com", "subject": "one", "body": "first"}
    second = {"to": "b@example.com", "subject": "two", "body": "second"}
    turn = AIMessage(
        "",
        tool_calls=[
            {"name": "send_email", "args": first, "id": "call_a"},
            {"name": "calculator", "args": {"expression": "2 + 2"}, "id": "call_sum"},
            {"name": "send_email", "args": second, "id": "call_b"},
        ],
    )
    config = _thread("two")
    await graph.aupdate_state(
        config, {"messages": [HumanMessage("two emails and a sum"), turn]}, as_node="model"
    )

    await graph.ainvoke(None, config)
    [pending] = (await graph.aget_state(config)).interrupts
    assert [a["args"] for a in pending.value["action_requests"]] == [first, second]
    result = await graph.ainvoke(_decide({"type": "approve"}, {"type": "reject"}), config)

    results = {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}
    assert set(results) == {"call_a", "call_sum", "call_b"}
    assert results["call_sum"].text == "4"
    assert results["call_b"].status == "error"
    assert [{key: e[key] for key in first} for e in _outbox(store, "two")] == [first]
    assert isinstance(result["messages"][-1], AIMessage)
    assert not result["messages"][-1].tool_calls


async def test_send_email_without_a_store_reports_it_instead_of_sending(example: Example) -> None:
    """Compiled without a store there is no outbox: the tool says so rather than pretending."""
    graph = _compile(example)
    await _ask_for_email(graph, "no-store")

    result = await graph.ainvoke(_decide({"type": "approve"}), _thread("no-store"))

    assert result["messages"][2].text.startswith("Error: this graph has no store")
    assert result["messages"][-1].text.startswith("The send_email tool reported a problem")


class _DiesBeforeSavingTheEmail(InMemorySaver):
    """A checkpointer whose process "dies" once: after the tools task sent the email, before its result
    (the tool message) or the next checkpoint was saved, as a worker killed between the two would."""

    lost_writes = False
    died = False

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        values = [v for _, value in writes for v in (value if isinstance(value, list) else [value])]
        if not self.lost_writes and any(isinstance(v, ToolMessage) for v in values):
            self.lost_writes = True  # never reached the database
            return
        await super().aput_writes(config, writes, task_id, task_path)

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if self.lost_writes and not self.died:
            self.died = True
            raise _WorkerDied
        return await super().aput(config, checkpoint, metadata, new_versions)


class _WorkerDied(Exception):
    pass


async def test_an_approved_email_that_runs_again_after_a_crash_is_sent_once(example: Example) -> None:
    """The tools task sends the email and its worker dies before the result is saved: resumed from its
    checkpoint, the task runs again, and ``send_email`` (through ``graphrun.resilience.once``) answers
    with the first send's result instead of sending a second email."""
    store = InMemoryStore()
    saver = _DiesBeforeSavingTheEmail()
    graph = example.agent.build_agent(saver, store)
    await _ask_for_email(graph, "crash")

    with pytest.raises(_WorkerDied):
        await graph.ainvoke(_decide({"type": "approve"}), _thread("crash"), durability="sync")
    assert len(_outbox(store, "crash")) == 1  # sent before the crash
    result = await graph.ainvoke(None, _thread("crash"), durability="sync")

    assert saver.lost_writes
    assert saver.died
    [email] = _outbox(store, "crash")
    sent = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.text for m in sent] == ["Email sent to ann@example.com with the subject 'the launch'"]
    assert email["tool_call_id"] == sent[0].tool_call_id
