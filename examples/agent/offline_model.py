"""A deterministic chat model that needs no network, API key or weights.

It lets the example agent (and graphrun's tests and demos) run the full tool-calling
loop anywhere: it recognises a few intents with regular expressions, answers with
tool calls for them, turns tool results into a sentence, and otherwise echoes the
user. Replies stream word by word so LangGraph's ``messages`` stream mode has real
token chunks to forward.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

OFFLINE_NOTICE = "(offline model - set OPENAI_API_KEY or ANTHROPIC_API_KEY for a real one)"

_WEATHER_RE = re.compile(r"\b(?:weather|forecast|temperature)\b", re.IGNORECASE)
_CITY_RE = re.compile(
    r"\b(?:in|for|at)\s+([A-Za-z][A-Za-z .'-]*?)\s*(?:[?!.,;]|$|\b(?:today|tomorrow|now|right now|please)\b)",
    re.IGNORECASE,
)
_TIME_RE = re.compile(r"\b(?:what time|the time|current time|time now|time in)\b", re.IGNORECASE)
_TIMEZONE_RE = re.compile(r"\b([A-Za-z]+/[A-Za-z_]+(?:/[A-Za-z_]+)?|UTC|GMT)\b")
_EXPRESSION_RE = re.compile(r"-?[\d(.][\d\s.+\-*/()]*[\d)]")
_OPERATOR_BETWEEN_NUMBERS_RE = re.compile(r"[\d)]\s*[-+*/]\s*[-(\d.]")
_EMAIL_RE = re.compile(r"\be-?mail\b", re.IGNORECASE)
_ADDRESS_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BODY_MARKER = r"(?:saying|that says|with the message)"
_SUBJECT_RE = re.compile(rf"\babout\s+(.+?)(?=\s+{_BODY_MARKER}\b|[.!?]*$)", re.IGNORECASE)
_BODY_RE = re.compile(rf"\b{_BODY_MARKER}\s*:?\s*(.+)$", re.IGNORECASE | re.DOTALL)
_REJECTED_RE = re.compile(r"\brejected\b", re.IGNORECASE)
DEFAULT_EMAIL_SUBJECT = "A note from your assistant"
_TOKEN_RE = re.compile(r"\S+\s*|\s+")
_ARGS_PIECE_RE = re.compile(r".{1,8}", re.DOTALL)

_RESULT_TEMPLATES = {
    "calculator": "The result is {result}.",
    "get_time": "The current time is {result}.",
    "lookup_weather": "Here is the weather: {result}.",
    "send_email": "Done. {result}.",
}


def _balanced(expression: str) -> str:
    """Drop parentheses that the surrounding prose, not the maths, contributed."""
    expression = expression.strip()
    while expression.startswith("(") and expression.count("(") > expression.count(")"):
        expression = expression[1:].strip()
    while expression.endswith(")") and expression.count(")") > expression.count("("):
        expression = expression[:-1].strip()
    return expression


def _find_expression(text: str) -> str | None:
    """Return the first arithmetic-looking span (digits joined by an operator), if any."""
    for match in _EXPRESSION_RE.finditer(text):
        candidate = _balanced(match.group())
        if _OPERATOR_BETWEEN_NUMBERS_RE.search(candidate):
            return candidate
    return None


def _find_city(text: str) -> str | None:
    """Pick the place name after 'in/for/at', so 'weather in New York today?' gives 'New York'."""
    match = _CITY_RE.search(text)
    return match.group(1).strip() if match else None


def _find_timezone(text: str) -> str:
    """Use an IANA name or UTC/GMT if the user gave one; UTC keeps the answer defined otherwise."""
    match = _TIMEZONE_RE.search(text)
    return match.group(1) if match else "UTC"


def _email_draft(text: str) -> dict[str, str] | None:
    """Read 'email <address> about <subject> saying <body>'; None when no address is given.

    The subject and body are optional: the subject has a default and the body repeats it.
    """
    address = _ADDRESS_RE.search(text)
    if address is None:
        return None
    subject_match = _SUBJECT_RE.search(text)
    body_match = _BODY_RE.search(text)
    subject = subject_match.group(1).strip() if subject_match else DEFAULT_EMAIL_SUBJECT
    body = body_match.group(1).strip().strip("'\"") if body_match else f"{subject}."
    return {"to": address.group(), "subject": subject, "body": body}


def _detect_intent(text: str) -> tuple[str, dict[str, Any]] | str | None:
    """Map a user message to (tool name, arguments), a clarifying reply, or None for chit-chat.

    Keyword intents are checked before arithmetic because dates such as 2024-05-01 look like
    subtraction, while the words 'weather' or 'what time' are unambiguous. Email comes first:
    what an email is about ('the weather in Paris') must not trigger another tool.
    """
    if _EMAIL_RE.search(text):
        draft = _email_draft(text)
        return ("send_email", draft) if draft else "Who should I email? Please give me their address."
    if _WEATHER_RE.search(text):
        city = _find_city(text)
        return ("lookup_weather", {"city": city}) if city else "Which city would you like the weather for?"
    if _TIME_RE.search(text):
        return "get_time", {"timezone": _find_timezone(text)}
    expression = _find_expression(text)
    if expression is not None:
        return "calculator", {"expression": expression}
    return None


def _echo(text: str) -> str:
    """The fallback reply: proves the round trip works and says how to get a real model."""
    said = " ".join(text.split()).rstrip(".") or "nothing"
    return f"You said: {said}. {OFFLINE_NOTICE}"


def _describe_result(message: ToolMessage) -> str:
    """Turn one tool result into a sentence that quotes it verbatim."""
    result = message.text.strip().rstrip(".")
    name = message.name or "tool"
    if message.status == "error" and _REJECTED_RE.search(result):
        return f"Understood, I did not go ahead. {result}."
    if message.status == "error" or result.startswith("Error"):
        return f"The {name} tool reported a problem: {result}."
    template = _RESULT_TEMPLATES.get(name, "The {name} tool returned: {result}.")
    return template.format(name=name, result=result)


def _trailing_tool_results(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """Collect the tool results after the last AI turn (several if tools ran in parallel)."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.append(message)
    return results[::-1]


def _last_human_text(messages: Sequence[BaseMessage]) -> str:
    """Text of the most recent user turn, for echoing when the last message is not one."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
    return ""


def _bound_tool_names(kwargs: Mapping[str, Any]) -> frozenset[str]:
    """Names of the tools passed via bind_tools; only those may be called."""
    names = set()
    for schema in kwargs.get("tools") or ():
        function = schema.get("function") if isinstance(schema, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return frozenset(names)


def _plan_reply(messages: Sequence[BaseMessage], tool_names: frozenset[str]) -> AIMessage:
    """Decide the whole reply up front, so streamed and non-streamed output are identical."""
    results = _trailing_tool_results(messages)
    if results:
        return AIMessage(content=" ".join(_describe_result(result) for result in results))
    last = messages[-1] if messages else None
    if not isinstance(last, HumanMessage):
        return AIMessage(content=_echo(_last_human_text(messages)))
    intent = _detect_intent(last.text)
    if isinstance(intent, str):
        return AIMessage(content=intent)
    if intent is not None and intent[0] in tool_names:
        name, args = intent
        return AIMessage(content="", tool_calls=[tool_call(name=name, args=args, id=f"call_{len(messages)}")])
    return AIMessage(content=_echo(last.text))


def _response_metadata(reply: AIMessage, model_name: str) -> dict[str, Any]:
    """Metadata shaped like real providers', so clients can show model and finish reason."""
    return {"model_name": model_name, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}


def _tool_call_chunks(call: ToolCall, index: int) -> Iterator[AIMessageChunk]:
    """Stream one tool call as providers do: id and name first, then the JSON args in pieces."""
    pieces = _ARGS_PIECE_RE.findall(json.dumps(call["args"])) or [""]
    for position, piece in enumerate(pieces):
        first = position == 0
        chunk = tool_call_chunk(
            name=call["name"] if first else None,
            args=piece,
            id=call["id"] if first else None,
            index=index,
        )
        yield AIMessageChunk(content="", tool_call_chunks=[chunk])


def _reply_chunks(reply: AIMessage, model_name: str) -> Iterator[ChatGenerationChunk]:
    """Split a planned reply into token chunks, ending with a metadata-only 'last' chunk."""
    for token in _TOKEN_RE.findall(reply.text):
        yield ChatGenerationChunk(message=AIMessageChunk(content=token))
    for index, call in enumerate(reply.tool_calls):
        for chunk in _tool_call_chunks(call, index):
            yield ChatGenerationChunk(message=chunk)
    final = AIMessageChunk(
        content="", chunk_position="last", response_metadata=_response_metadata(reply, model_name)
    )
    yield ChatGenerationChunk(message=final)


class OfflineChatModel(BaseChatModel):
    """Rule-based chat model with tool calling and token streaming, for offline use."""

    model_name: str = "offline"

    @property
    def _llm_type(self) -> str:
        """Identifies the model family in traces and cache keys."""
        return "offline-chat"

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        """Parameters that make two instances interchangeable (used for tracing and caching)."""
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind OpenAI-format tool schemas; their names limit which tool calls we emit.

        ``tool_choice`` is accepted for interface compatibility; the rules already decide.
        """
        schemas = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=schemas, **kwargs)

    def _plan(self, messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> AIMessage:
        """Shared entry point for every generate/stream variant."""
        reply = _plan_reply(messages, _bound_tool_names(kwargs))
        reply.response_metadata = _response_metadata(reply, self.model_name)
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Return the whole reply at once (used when nobody is streaming)."""
        return ChatResult(generations=[ChatGeneration(message=self._plan(messages, kwargs))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Async variant; overridden so no executor thread is spent on pure computation."""
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Yield the reply token by token; langchain-core fires the token callbacks."""
        yield from _reply_chunks(_plan_reply(messages, _bound_tool_names(kwargs)), self.model_name)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Async variant of _stream, overridden to avoid the default thread-per-chunk bridge."""
        for chunk in self._stream(messages, stop, **kwargs):
            yield chunk
