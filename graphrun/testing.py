"""A chat model that fails on purpose, to see how a graph and the server cope (``FaultyChatModel``).

It wraps any chat model (tool binding and token streaming go through to it) and, per call, may first
wait (a latency range, plus a slow tail), then fail the way providers fail: a 429 with ``Retry-After``,
a 5xx, a hang, or a stream that breaks mid-way. Its errors look like the providers' to
``graphrun.resilience.classify`` (status codes, an httpx response with headers, the providers' class
names). What it does is set by a ``Faults`` given to the constructor, or read from the environment by
``with_faults_from_env``:

- ``GRAPHRUN_FAULTS``: ``key=value`` pairs, comma-separated, e.g.
  ``rate_limit=0.1,retry_after=2,error=0.05,latency_ms=50-400,hang=0.01,break=0.05,seed=7``;
- ``GRAPHRUN_FAULTS_FILE``: a JSON object of the same keys, read again whenever the file changes (how
  ``bench/chaos.py`` starts and ends an outage in running workers).

These are the graph's variables, read by the graph's own code like a provider's API key, not server
settings, and so the one read of ``os.environ`` outside ``settings.py`` (``tests/unit/test_layers.py``
allows it by name): the server never reads them (its processes need not even import this module); a
graph calls ``with_faults_from_env`` when its module is imported, in any process (``langgraph dev``, a
notebook, a load-test driver) where graphrun's ``Settings`` does not exist; and this module imports no
graphrun module (layer 0), so graph authors can use it anywhere. ``graphrun --help`` lists what the
server reads, so it does not list these; ``examples/agent/README.md`` shows them in use.

Keys (all optional): ``latency_ms`` (``lo-hi``: uniform), ``slow`` and ``slow_ms`` (a tail:
that share of calls waits ``slow_ms`` more), ``rate_limit``, ``error``, ``hang``, ``break`` (shares of
calls, 0..1), ``retry_after`` (seconds, the 429's header), ``hang_s`` (how long a hang lasts), ``outage``
(true: every call fails 503), ``script`` (``+``-joined outcomes for the first calls: ``ok``,
``rate_limit``, ``error``, ``hang``, ``break``), ``seed``, ``model`` (the name breakers and metrics see).

Why just over ~400 lines (issue 24): one fault-injecting chat model and the ``Faults`` it reads, kept
whole so that graph authors import one module of layer 0; a quarter of it is this description of its keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, PrivateAttr

Outcome = Literal["ok", "rate_limit", "error", "hang", "break"]
_OUTCOMES = ("ok", "rate_limit", "error", "hang", "break")
_REQUEST = httpx.Request("POST", "https://faults.invalid/v1/chat/completions")
# No callbacks for the wrapped model's own call: its tokens and spans are this model's.
_QUIET: Any = {"callbacks": []}


@contextlib.contextmanager
def _unobserved() -> Iterator[None]:
    """The wrapped model's call, out of sight of the run's callbacks. Passing ``callbacks: []`` is not
    enough: a tool-bound model (a ``RunnableBinding``) merges in the config of the runnable around it,
    callbacks included, so metrics, breakers and ``/stats`` saw every call twice (as ``fault`` and as
    the inner provider)."""
    token = var_child_runnable_config.set(None)
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


class ModelFault(Exception):
    """An injected failure, shaped like a provider SDK's: ``status_code`` and an httpx ``response``."""

    status: int | None = None

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = self.status
        self.response = (
            None
            if self.status is None
            else httpx.Response(self.status, headers=dict(headers or {}), request=_REQUEST)
        )


class RateLimitError(ModelFault):
    status = 429


class InternalServerError(ModelFault):
    status = 503


class StreamBroken(ModelFault, ConnectionError):
    """The connection went away mid-answer (no status: the provider never finished)."""


@dataclass(frozen=True)
class Faults:
    latency_ms: tuple[float, float] = (0.0, 0.0)
    slow: float = 0.0
    slow_ms: float = 0.0
    rate_limit: float = 0.0
    retry_after: float = 1.0
    error: float = 0.0
    hang: float = 0.0
    hang_s: float = 3600.0
    break_: float = 0.0
    outage: bool = False
    script: tuple[Outcome, ...] = ()
    seed: int | None = None
    model: str = ""

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """``key=value,key=value`` (see the module's docstring); a bad key or value is a ``ValueError``."""
        given: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"faults: {item!r} is not key=value")
            given[key.strip()] = value.strip()
        return cls.of(given)

    @classmethod
    def of(cls, given: Mapping[str, Any]) -> Faults:
        """From a mapping of the documented keys (a parsed JSON object, or ``parse``'s strings)."""
        names = {f.name.rstrip("_"): f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in given.items():
            name = names.get(key)
            if name is None:
                raise ValueError(f"faults: unknown key {key!r}; keys: {', '.join(sorted(names))}")
            values[name] = _value(name, value)
        faults = cls(**values)
        for name in ("slow", "rate_limit", "error", "hang", "break_"):
            if not 0 <= getattr(faults, name) <= 1:
                raise ValueError(f"faults: {name.rstrip('_')} is a share of calls, between 0 and 1")
        return faults


def _value(name: str, value: Any) -> Any:
    try:
        if name == "latency_ms":
            if isinstance(value, (list, tuple)):
                lo, hi = (float(v) for v in value)
            else:
                lo_text, _, hi_text = str(value).partition("-")
                lo = float(lo_text)
                hi = float(hi_text) if hi_text else lo
            return (min(lo, hi), max(lo, hi))
        if name == "script":
            items = value if isinstance(value, (list, tuple)) else str(value).split("+")
            script = tuple(str(i).strip() for i in items if str(i).strip())
            bad = [i for i in script if i not in _OUTCOMES]
            if bad:
                raise ValueError(f"script outcome {bad[0]!r} is none of {', '.join(_OUTCOMES)}")
            return script
        if name == "outage":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if name == "seed":
            return None if value in (None, "") else int(value)
        if name == "model":
            return str(value)
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"faults: bad {name.rstrip('_')}: {value!r} ({exc})") from exc


class FaultyChatModel(BaseChatModel):
    """``inner`` with ``faults`` injected before (or, for ``break``, during) each call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    faults: Faults = Faults()
    faults_file: str | None = None
    provider: str = "fault"

    _rng: random.Random = PrivateAttr()
    _script: list[Outcome] = PrivateAttr(default_factory=list)
    _file_seen: tuple[float, int] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _outcomes: list[Outcome] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        self._adopt(self.faults)

    def _adopt(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._script = list(faults.script)

    @property
    def calls(self) -> list[Outcome]:
        """What each call so far was made to do, in order."""
        return list(self._outcomes)

    @property
    def _llm_type(self) -> str:
        return "fault-injecting"

    @property
    def model_name(self) -> str:
        return self.faults.model or _inner_name(self.inner)

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools are bound to the wrapped model, at each call."""
        return self.bind(_faulty_tools=(list(tools), kwargs))

    # ------------------------------------------------------------ deciding

    def _next(self) -> tuple[Outcome, float]:
        """This call's outcome and how long it waits first (seconds)."""
        with self._lock:
            self._reload()
            f = self.faults
            lo, hi = f.latency_ms
            wait_ms = self._rng.uniform(lo, hi)
            if f.slow and self._rng.random() < f.slow:
                wait_ms += f.slow_ms
            outcome: Outcome
            if self._script:
                outcome = self._script.pop(0)
            elif f.outage:
                outcome = "error"
            else:
                outcome = "ok"
                roll = self._rng.random()
                for name, share in (
                    ("rate_limit", f.rate_limit),
                    ("error", f.error),
                    ("hang", f.hang),
                    ("break", f.break_),
                ):
                    if roll < share:
                        outcome = name  # type: ignore[assignment]
                        break
                    roll -= share
            self._outcomes.append(outcome)
            return outcome, wait_ms / 1000

    def _reload(self) -> None:
        if not self.faults_file:
            return
        try:
            stat = Path(self.faults_file).stat()
        except OSError:
            return
        seen = (stat.st_mtime, stat.st_size)
        if seen == self._file_seen:
            return
        self._file_seen = seen
        # Half-written or wrong: keep what was in force, read it again when it changes.
        with contextlib.suppress(OSError, ValueError):
            self._adopt(Faults.of(json.loads(Path(self.faults_file).read_text(encoding="utf-8") or "{}")))

    def _fail(self, outcome: Outcome) -> None:
        if outcome == "rate_limit":
            retry_after = f"{self.faults.retry_after:g}"
            raise RateLimitError("injected: rate limited", {"retry-after": retry_after})
        if outcome == "error":
            raise InternalServerError("injected: the model provider is unavailable")
        if outcome == "break":
            raise StreamBroken("injected: the connection closed mid-answer")

    def _target(self, kwargs: dict[str, Any]) -> Runnable[LanguageModelInput, BaseMessage]:
        bound = kwargs.pop("_faulty_tools", None)
        if bound is None:
            return self.inner
        tools, options = bound
        return self.inner.bind_tools(tools, **options)

    def _delivered(self, outcome: Outcome, chunks: Sequence[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        """The wrapped model's chunks; for ``break``, half of them, then the connection drops."""
        for index, chunk in enumerate(chunks):
            if outcome == "break" and index >= max(1, len(chunks) // 2):
                self._fail(outcome)
            yield ChatGenerationChunk(message=_as_chunk(chunk))
        if outcome == "break":
            self._fail(outcome)

    # ------------------------------------------------------------ calling

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        outcome, wait_s = self._next()
        await asyncio.sleep(wait_s)
        if outcome == "hang":
            await asyncio.sleep(self.faults.hang_s)
        self._fail(outcome)
        with _unobserved():
            reply = await self._target(kwargs).ainvoke(messages, _QUIET, stop=stop)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        outcome, wait_s = self._next()
        time.sleep(wait_s)
        if outcome == "hang":
            time.sleep(self.faults.hang_s)
        self._fail(outcome)
        with _unobserved():
            reply = self._target(kwargs).invoke(messages, _QUIET, stop=stop)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        outcome, wait_s = self._next()
        await asyncio.sleep(wait_s)
        if outcome == "hang":
            await asyncio.sleep(self.faults.hang_s)
        if outcome != "break":
            self._fail(outcome)
        with _unobserved():
            chunks = [c async for c in self._target(kwargs).astream(messages, _QUIET, stop=stop)]
        for chunk in self._delivered(outcome, chunks):
            yield chunk

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        outcome, wait_s = self._next()
        time.sleep(wait_s)
        if outcome == "hang":
            time.sleep(self.faults.hang_s)
        if outcome != "break":
            self._fail(outcome)
        with _unobserved():
            chunks = list(self._target(kwargs).stream(messages, _QUIET, stop=stop))
        yield from self._delivered(outcome, chunks)


def _as_chunk(message: BaseMessage) -> AIMessageChunk:
    """A model without a streaming mode of its own answers one whole message: as a chunk, with all of
    it (token usage, tool calls, response metadata), not only its text."""
    if isinstance(message, AIMessageChunk):
        return message
    fields = message.model_dump(exclude={"type"})
    return AIMessageChunk(**{k: v for k, v in fields.items() if k in AIMessageChunk.model_fields})


def _inner_name(model: BaseChatModel) -> str:
    for attr in ("model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def with_faults_from_env(model: BaseChatModel, environ: Mapping[str, str] | None = None) -> BaseChatModel:
    """``model`` wrapped in a ``FaultyChatModel`` when ``GRAPHRUN_FAULTS`` or ``GRAPHRUN_FAULTS_FILE`` is
    set, else ``model`` itself. A bad ``GRAPHRUN_FAULTS`` is a ``ValueError`` naming the key."""
    env = os.environ if environ is None else environ
    spec, path = env.get("GRAPHRUN_FAULTS", ""), env.get("GRAPHRUN_FAULTS_FILE", "")
    if not spec and not path:
        return model
    faults = Faults.parse(spec) if spec else Faults()
    return FaultyChatModel(inner=model, faults=faults, faults_file=path or None)


__all__ = [
    "Faults",
    "FaultyChatModel",
    "InternalServerError",
    "ModelFault",
    "RateLimitError",
    "StreamBroken",
    "with_faults_from_env",
]
