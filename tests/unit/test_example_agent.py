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


def _compile(example: Example) -> Any:
    """Compile with an in-memory saver, standing in for the persistence the server attaches."""
    return example.agent.build_graph().compile(checkpointer=InMemorySaver())


def _thread(thread_id: str) -> dict[str, Any]:
    """Config for one conversation thread."""
    return {"configurable": {"thread_id": thread_id}}


def test_exported_graph_has_no_checkpointer(example: Example) -> None:
    """The server attaches its own saver, so the shipped graph must not bring one."""
    assert example.agent.graph.checkpointer is None
    assert {"agent", "tools"} <= set(example.agent.graph.nodes)


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
        if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "agent" and chunk.text:
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
        [
            HumanMessage("What is 7 * 6?"),
            AIMessage(
                "", tool_calls=[{"name": "calculator", "args": {"expression": "7 * 6"}, "id": "call_1"}]
            ),
            ToolMessage("42", tool_call_id="call_1", name="calculator"),
        ],
    ],
    ids=["calculation", "weather", "time", "echo", "tool-result"],
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
