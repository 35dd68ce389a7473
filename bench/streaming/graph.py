"""A one-node chat graph used by ``bench/streams.py`` to measure token streaming through the server.

The node calls LangChain's ``GenericFakeChatModel`` (a fake at the true edge: a remote model provider)
with no delay, so everything a stream costs is the runtime's: the run queue, LangGraph's ``messages``
callbacks, the event bus and SSE.

What a token is: the model answers ``TEXT``, 20 words. ``GenericFakeChatModel`` splits its answer on
whitespace and emits each space as a chunk of its own (39 chunks for 20 words); ``TokenFakeChatModel``
instead glues each space onto the word after it, the way a provider's tokenizer makes ``" tok01"`` one
token. So the model emits exactly ``TOKEN_COUNT`` chunks, ``TOKENS``, each one ``messages`` event on the
wire, and their concatenation is ``TEXT``. Its ``_astream`` is native async, like a real provider's:
``BaseChatModel``'s default would hop to a thread for every chunk.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.graph import START, MessagesState, StateGraph

TOKEN_COUNT = 20
TOKENS = tuple(("" if i == 0 else " ") + f"tok{i:02d}" for i in range(TOKEN_COUNT))
TEXT = "".join(TOKENS)


class TokenFakeChatModel(GenericFakeChatModel):
    """``GenericFakeChatModel`` whose chunks are whole tokens: a whitespace chunk joins the next word."""

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        pending = ""
        for chunk in self._stream(messages, stop=stop, **kwargs):
            text = chunk.message.content
            if isinstance(text, str) and text.isspace():
                pending += text
                continue
            if pending and isinstance(text, str):
                chunk.message.content = pending + text
                pending = ""
            yield chunk


# Answers are plain strings: the model builds a fresh AIMessage from one on every call, so concurrent
# runs share nothing mutable.
model = TokenFakeChatModel(messages=itertools.repeat(TEXT))


async def answer(state: MessagesState) -> dict[str, Any]:
    """The only node: stream the model's answer; the finished message goes into the state."""
    return {"messages": [await model.ainvoke(state["messages"])]}


graph = StateGraph(MessagesState).add_node("answer", answer).add_edge(START, "answer").compile()
