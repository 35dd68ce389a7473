"""graphrun.testing's fault-injecting model as the server sees it: one model call is one call in the
run's callbacks (metrics, breakers and ``/stats`` count it as the fault model's, once), with the inner
model's token usage and tool calls, whether the graph invokes or streams it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph

from graphrun import metrics
from graphrun.instrument import RunInstrument
from graphrun.testing import Faults, FaultyChatModel


class ToolModel(BaseChatModel):
    """A provider's model that binds tools and answers one whole message (no streaming of its own),
    with its token usage and a tool call."""

    @property
    def _llm_type(self) -> str:
        return "tool-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "innerprovider"
        params["ls_model_name"] = "inner-model"
        return params

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Any | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[getattr(t, "name", t) for t in tools], **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        assert kwargs["tools"] == ["shout"], "the tools reach the wrapped model"
        message = AIMessage(
            content="calling",
            tool_calls=[{"name": "shout", "args": {"text": "hi"}, "id": "call-1", "type": "tool_call"}],
            usage_metadata={"input_tokens": 7, "output_tokens": 5, "total_tokens": 12},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def shout(text: str) -> str:
    """Say it loud."""
    return text.upper()


class Calls(BaseCallbackHandler):
    def __init__(self) -> None:
        self.models: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.models.append(str((kwargs.get("metadata") or {}).get("ls_provider")))


def _graph(model: BaseChatModel) -> Any:
    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.bind_tools([shout]).ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile()


def _calls(provider: str, model: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "graphrun_model_calls_total", {"provider": provider, "model": model, "outcome": "ok"}
        )
        or 0.0
    )


@pytest.mark.parametrize("streamed", [False, True], ids=["invoked", "streamed"])
def test_a_tool_bound_fault_model_is_one_call_with_the_inner_models_usage(streamed: bool) -> None:
    faulty = FaultyChatModel(inner=ToolModel(), faults=Faults.parse("model=faulty-1"))
    graph = _graph(faulty)
    instrument, calls = RunInstrument("g"), Calls()
    before = (_calls("fault", "faulty-1"), _calls("innerprovider", "inner-model"))

    async def run() -> BaseMessage:
        config: Any = {"callbacks": [instrument, calls]}
        if not streamed:
            final: dict[str, list[BaseMessage]] = await graph.ainvoke({"messages": [("user", "hi")]}, config)
            return final["messages"][-1]
        async for mode, part in graph.astream(
            {"messages": [("user", "hi")]}, config, stream_mode=["messages", "values"]
        ):
            if mode == "values":
                last: BaseMessage = part["messages"][-1]
        return last

    answer = asyncio.run(run())

    assert calls.models == ["fault"]
    assert (_calls("fault", "faulty-1") - before[0], _calls("innerprovider", "inner-model") - before[1]) == (
        1,
        0,
    )
    assert instrument.usage == {"fault/faulty-1": {"input": 7, "output": 5}}
    assert isinstance(answer, AIMessage)
    assert [c["name"] for c in answer.tool_calls] == ["shout"]
