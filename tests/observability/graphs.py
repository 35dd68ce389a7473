"""A graph for the observability tests: a chat model call (a fake at the provider edge that reports
token usage as real providers do), a tool call, and a node that fails on demand with a secret in its
message."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph


class UsageModel(BaseChatModel):
    """Answers with the last message's text upper-cased and counts tokens as words."""

    @property
    def _llm_type(self) -> str:
        return "usage-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "fakeprovider"
        params["ls_model_name"] = "fake-model-1"
        return params

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        text = str(messages[-1].content)
        words = len(text.split())
        message = AIMessage(
            content=text.upper(),
            usage_metadata={"input_tokens": words, "output_tokens": words, "total_tokens": 2 * words},
            response_metadata={"finish_reason": "stop", "model_name": "fake-model-1"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def shout(text: str) -> str:
    """Say it loud."""
    return text.upper() + "!"


class State(MessagesState, total=False):
    fail: str


async def chat(state: State) -> dict[str, Any]:
    if state.get("fail"):
        raise RuntimeError(f"the provider refused: {state['fail']}")
    answer = await UsageModel().ainvoke(state["messages"])
    echoed = await shout.ainvoke({"text": "done"})
    return {"messages": [answer, AIMessage(content=echoed)]}


builder = StateGraph(State)
builder.add_node("chat", chat)
builder.add_edge(START, "chat")
builder.add_edge("chat", END)
observed = builder.compile(name="observed")
