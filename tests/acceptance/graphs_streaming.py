"""Graphs for the streaming acceptance tests, served through ``langgraph.json`` like ``graphs.py``.

``draft_and_sign``: node ``draft`` streams a model's answer "draft one" token by token (LangChain's fake chat
model, a fake at the true edge), then node ``sign`` returns a whole message "signed" without streaming: two
messages of one run, one streamed and one not.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph


async def draft(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="draft one")]))
    return {"messages": [await model.ainvoke(state["messages"], config)]}


def sign(state: MessagesState) -> dict[str, Any]:
    return {"messages": [AIMessage(content="signed")]}


draft_and_sign = (
    StateGraph(MessagesState)
    .add_node("draft", draft)
    .add_node("sign", sign)
    .add_edge(START, "draft")
    .add_edge("draft", "sign")
    .compile()
)
