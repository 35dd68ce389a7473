"""The thread-stream protocol (``client.threads.stream`` in langgraph-sdk): a thread's stream turned into
protocol events, as the official server turns it.

A thread's events (``EventBus.subscribe_thread``) are the runs' stream parts in order, each run opened by
a ``metadata`` event with its id and closed by a ``run_done`` one. ``Session`` reads them from the start
of the log and hands out protocol events: ``{"type": "event", "event_id", "seq", "method", "params":
{"namespace", "timestamp", "data", "node"?}}``. It adds what the official server adds around a run: a
root ``lifecycle`` ``running`` when the run starts and a terminal one when it ends (``completed``,
``failed`` with the error, or ``interrupted``), ``input.requested`` for each interrupt (lifted out of
``values``), and protocol-shaped messages in ``values`` and ``updates``.

``seq`` counts from 1 on each connection and ``event_id`` is derived from the bus's event ids (``<id>``,
then ``<id>.1``, … for the envelopes one event yields) or, for the events the session adds, from the run
id: two connections that read the same log hand out the same events, so a client can dedupe and resume
(``since``) across reconnects. Runs started by ``run.start`` stream LangGraph's own v3 protocol events
(``astream_events(version="v3")``), which pass through; other runs' ``values``, ``updates`` and
``custom`` parts are translated.

Written here because neither LangGraph nor the SDK has the server half: LangGraph produces the per-run
events, the SDK consumes the thread-level stream; joining runs into one numbered stream is the server's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from graphrun.types import Json

# The channels a subscription may name, besides ``custom:<name>``.
CHANNELS = frozenset(
    {"values", "updates", "checkpoints", "messages", "tools", "custom", "lifecycle", "input", "tasks"}
)
# Lifecycle statuses that end a namespace (the root's ends the run).
TERMINAL = frozenset({"completed", "failed", "interrupted"})


def supported_channel(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return value in CHANNELS or (value.startswith("custom:") and len(value) > len("custom:"))


@dataclass(frozen=True)
class Filter:
    """What one stream (one connection) receives: channels, optionally namespace prefixes and how deep
    below them."""

    channels: frozenset[str]
    namespaces: tuple[tuple[str, ...], ...] | None = None
    depth: int | None = None

    def matches(self, event: Json) -> bool:
        method = event["method"]
        channel = "input" if method == "input.requested" else method
        params = event["params"]
        if channel == "custom":
            data = params.get("data")
            name = data.get("name") if isinstance(data, dict) else None
            if "custom" not in self.channels and (name is None or f"custom:{name}" not in self.channels):
                return False
        elif channel not in self.channels:
            return False
        if not self.namespaces:
            return True
        namespace = params.get("namespace") or []
        return any(
            _is_prefix(namespace, prefix)
            and (self.depth is None or len(namespace) - len(prefix) <= self.depth)
            for prefix in self.namespaces
        )


def _is_prefix(namespace: list[str], prefix: tuple[str, ...]) -> bool:
    """``prefix`` starts ``namespace``; a prefix segment without ``:`` also matches the segment's name
    before its ``:<task id>`` suffix."""
    if len(prefix) > len(namespace):
        return False
    for segment, candidate in zip(prefix, namespace, strict=False):
        if candidate != segment and (":" in segment or candidate.split(":")[0] != segment):
            return False
    return True


@dataclass(frozen=True)
class RunInfo:
    graph_id: str
    status: str


# The store lookups a session needs: a run of the thread (None once deleted), and whether the thread waits
# now at interrupts that this run left (it is the thread's latest started run: a replayed older run's end
# must not take the interrupts of a later one).
RunLookup = Callable[[str], Awaitable[RunInfo | None]]
InterruptsPending = Callable[[str], Awaitable[bool]]


class Session:
    """One connection's view of a thread's stream: feed it the thread's events in order, get the protocol
    events they make."""

    def __init__(self, run_lookup: RunLookup, interrupts_pending: InterruptsPending) -> None:
        self._run_lookup = run_lookup
        self._interrupts_pending = interrupts_pending
        self._seq = 0
        self._run_id: str | None = None
        self._graph_name = "root"
        self._told_end = False  # the root's terminal lifecycle was sent
        self._namespaces: dict[tuple[str, ...], str] = {}  # namespace -> its last lifecycle status
        self._asked: set[str] = set()  # interrupt ids already requested in this run
        self._out: list[Json] = []
        self._source_id = ""
        self._source_count = 0

    async def feed(self, source_id: str, name: str, raw: bytes) -> list[Json]:
        self._out = []
        self._source_id, self._source_count = source_id, 0
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
        if name == "metadata":
            await self._metadata(data)
        elif self._run_id is not None and name != "state_update":
            if name == "error":
                message = data.get("message", str(data)) if isinstance(data, dict) else str(data)
                self._lifecycle((), "failed", error=message)
                self._told_end = True
            else:
                method, _, suffix = name.partition("|")
                namespace = tuple(suffix.split("|")) if suffix else ()
                self._part(method, namespace, data)
        return self._out

    async def _metadata(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
            return
        run_id = data["run_id"]
        if data.get("status") == "run_done":
            if run_id == self._run_id and not self._told_end:
                await self._end()
            return
        if run_id == self._run_id:
            return  # another attempt of the same run: it goes on
        info = await self._run_lookup(run_id)
        self._run_id, self._told_end = run_id, False
        self._namespaces, self._asked = {}, set()
        self._graph_name = info.graph_id if info is not None else "root"
        self._lifecycle((), "running")

    async def _end(self) -> None:
        info = await self._run_lookup(self._run_id or "")
        status = {
            "success": "completed",
            "error": "failed",
            "timeout": "failed",
            "interrupted": "interrupted",
        }.get(info.status if info is not None else "success", "running")
        if status == "running":
            return
        if status == "completed" and await self._interrupts_pending(self._run_id or ""):
            status = "interrupted"
        for namespace, current in list(self._namespaces.items()):
            if namespace and current not in TERMINAL:
                self._lifecycle(namespace, "completed")
        self._lifecycle((), status)
        self._told_end = True

    # ------------------------------------------------------------ a run's stream parts

    def _part(self, method: str, namespace: tuple[str, ...], data: Any) -> None:
        if _is_protocol_event(data):  # LangGraph's v3 event, from a run started by run.start
            params = data["params"]
            namespace = tuple(params.get("namespace") or namespace)
            method = data["method"]
            self._protocol_part(method, namespace, params)
        elif method == "values":
            self._values(namespace, data, [])
        elif method == "updates":
            self._updates(namespace, data)
        elif method == "custom":
            self._emit("custom", namespace, {"payload": data})
        # Other modes of other runs (debug, events, the older messages shapes) have no protocol form.

    def _protocol_part(self, method: str, namespace: tuple[str, ...], params: Json) -> None:
        data = params.get("data")
        timestamp = params.get("timestamp")
        if method == "lifecycle":
            self._sub_lifecycle(namespace, data)
        elif method == "values":
            self._values(namespace, data, params.get("interrupts") or [], timestamp)
        elif method == "updates":
            node = params.get("node")
            if node == "__interrupt__" or (isinstance(data, dict) and data.get("node") == "__interrupt__"):
                values = data.get("values") if isinstance(data, dict) else data
                self._ask(namespace, values if isinstance(values, list) else [])
                return
            self._emit("updates", namespace, state_payload(data), node=node, timestamp=timestamp)
        elif method == "messages":
            payload = data[0] if isinstance(data, list) and len(data) == 2 else data
            if isinstance(payload, dict) and isinstance(payload.get("event"), str):
                self._emit("messages", namespace, payload, timestamp=timestamp)
        elif method.startswith("custom:"):
            self._emit(
                "custom", namespace, {"name": method[len("custom:") :], "payload": data}, timestamp=timestamp
            )
        elif method == "tools":
            node = data.pop("__node", None) if isinstance(data, dict) else None
            self._emit("tools", namespace, data, node=node, timestamp=timestamp)
        else:
            self._emit(method, namespace, data, node=params.get("node"), timestamp=timestamp)

    def _values(
        self, namespace: tuple[str, ...], data: Any, interrupts: list[Any], timestamp: Any = None
    ) -> None:
        if isinstance(data, dict) and "__interrupt__" in data:
            interrupts = [*interrupts, *(data["__interrupt__"] or [])]
            data = {k: v for k, v in data.items() if k != "__interrupt__"}
        self._ask(namespace, interrupts)
        if data is not None and data != {}:
            self._emit("values", namespace, state_payload(data), timestamp=timestamp)

    def _updates(self, namespace: tuple[str, ...], data: Any) -> None:
        node: str | None = None
        values = data
        if isinstance(data, dict) and len(data) == 1:
            node, values = next(iter(data.items()))
        if node == "__interrupt__":
            self._ask(namespace, values if isinstance(values, list) else [])
            return
        if not isinstance(values, dict):
            values = {"value": values}
        if values:
            self._emit("updates", namespace, state_payload(values), node=node)

    def _ask(self, namespace: tuple[str, ...], interrupts: list[Any]) -> None:
        """``input.requested`` for each new interrupt; the first also stops the run's root lifecycle at
        ``interrupted`` (it waits for ``input.respond``)."""
        asked = False
        for item in interrupts:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or item["id"] in self._asked:
                continue
            self._asked.add(item["id"])
            request: Json = {"interrupt_id": item["id"]}
            if "value" in item:
                request["payload"] = item["value"]
            self._emit(
                "input.requested", namespace, request, event_id=self._synth("input", namespace, item["id"])
            )
            asked = True
        if asked:
            self._lifecycle((), "interrupted")
            self._told_end = True

    def _sub_lifecycle(self, namespace: tuple[str, ...], data: Any) -> None:
        """A subgraph's lifecycle from LangGraph; the root's own is the session's to say."""
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            return
        announced = data.get("namespace")
        if isinstance(announced, list) and len(announced) > len(namespace):
            namespace = tuple(announced)
        if not namespace:
            return
        cause = data.get("cause") if isinstance(data.get("cause"), dict) else None
        self._lifecycle(namespace, data["event"], graph_name=data.get("graph_name"), cause=cause)

    # ------------------------------------------------------------ envelopes

    def _lifecycle(
        self,
        namespace: tuple[str, ...],
        status: str,
        *,
        graph_name: Any = None,
        error: str | None = None,
        cause: Json | None = None,
    ) -> None:
        if self._namespaces.get(namespace) == status and error is None and cause is None:
            return
        self._namespaces[namespace] = status
        if not isinstance(graph_name, str):
            graph_name = self._graph_name if not namespace else namespace[-1].split(":")[0]
        data: Json = {"event": status, "graph_name": graph_name}
        if error is not None:
            data["error"] = error
        if cause is not None:
            data["cause"] = cause
        self._emit("lifecycle", namespace, data, event_id=self._synth("lc", namespace, status))

    def _synth(self, kind: str, namespace: tuple[str, ...], detail: str) -> str:
        return f"synth:{self._run_id}:{kind}|{'/'.join(namespace)}|{detail}"

    def _emit(
        self,
        method: str,
        namespace: tuple[str, ...],
        data: Any,
        *,
        node: Any = None,
        timestamp: Any = None,
        event_id: str | None = None,
    ) -> None:
        self._seq += 1
        if event_id is None:
            n = self._source_count
            self._source_count += 1
            event_id = self._source_id if n == 0 else f"{self._source_id}.{n}"
        params: Json = {
            "namespace": list(namespace),
            "timestamp": timestamp if isinstance(timestamp, int) else int(time.time() * 1000),
            "data": data,
        }
        if isinstance(node, str) and node:
            params["node"] = node
        self._out.append(
            {"type": "event", "event_id": event_id, "seq": self._seq, "method": method, "params": params}
        )


def run_event(event: Any) -> tuple[str, Json] | None:
    """A v3 protocol event from LangGraph as a run publishes it: its name (``<method>|<namespace…>``)
    and the event without LangGraph's own ``seq``; None for what the protocol does not carry (messages
    in LangGraph's older tuple shapes)."""
    if not _is_protocol_event(event):
        return None
    method, params = event["method"], dict(event["params"])
    if method == "messages":
        data = params.get("data")
        payload = data[0] if isinstance(data, (list, tuple)) and len(data) == 2 else data
        if not (isinstance(payload, dict) and isinstance(payload.get("event"), str)):
            return None
        params["data"] = payload
    namespace = params.get("namespace") or []
    name = "|".join([method, *namespace])
    return name, {"type": "event", "method": method, "params": params}


def _is_protocol_event(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "event"
        and isinstance(value.get("method"), str)
        and isinstance(value.get("params"), dict)
    )


# ---------------------------------------------------------------- state payloads

_MESSAGE_TYPES = frozenset({"human", "ai", "system", "tool", "function", "remove"})
_BLOCK_TYPES = frozenset(
    {
        "text",
        "reasoning",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_call_result",
        "image",
        "audio",
        "video",
        "file",
        "non_standard",
    }
)


def state_payload(value: Any) -> Any:
    """A ``values``/``updates`` payload with its messages in protocol shape (type, content blocks, ids,
    tool calls) and no ``__interrupt__``."""
    if isinstance(value, list):
        return [_message(v) if _is_message(v) else state_payload(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: Json = {}
    for key, entry in value.items():
        if key == "__interrupt__":
            continue
        if key == "messages" and isinstance(entry, list):
            out[key] = [_message(m) if _is_message(m) else m for m in entry]
        else:
            out[key] = state_payload(entry)
    return out


def _message_type(value: Any) -> Any:
    return {"assistant": "ai", "user": "human"}.get(value, value) if isinstance(value, str) else None


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and _message_type(value.get("type")) in _MESSAGE_TYPES


def _message(value: Json) -> Json:
    kind = _message_type(value.get("type"))
    message: Json = {"type": kind, "content": _content(value.get("content", ""))}
    for key in ("id", "name"):
        if isinstance(value.get(key), str):
            message[key] = value[key]
    if kind in ("ai", "human") and isinstance(value.get("example"), bool):
        message["example"] = value["example"]
    if isinstance(value.get("response_metadata"), dict) and value["response_metadata"]:
        message["response_metadata"] = value["response_metadata"]
    if kind == "tool":
        if isinstance(value.get("tool_call_id"), str):
            message["tool_call_id"] = value["tool_call_id"]
        if value.get("status") in ("success", "error"):
            message["status"] = value["status"]
        if "artifact" in value:
            message["artifact"] = value["artifact"]
    if kind == "ai":
        calls = [
            {
                "type": "tool_call",
                "name": c["name"],
                "args": c.get("args") or {},
                **({"id": c["id"]} if c.get("id") else {}),
            }
            for c in value.get("tool_calls") or []
            if isinstance(c, dict) and isinstance(c.get("name"), str)
        ]
        if calls:
            message["tool_calls"] = calls
        if value.get("invalid_tool_calls"):
            message["invalid_tool_calls"] = value["invalid_tool_calls"]
    return message


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    blocks: list[Any] = []
    for entry in content:
        if isinstance(entry, str):
            blocks.append({"type": "text", "text": entry})
        elif isinstance(entry, dict) and isinstance(entry.get("type"), str):
            blocks.append(_block(entry))
    return blocks or content


def _block(block: Json) -> Json:
    if block["type"] in _BLOCK_TYPES:
        return block
    if block["type"] == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            return {"type": "image", "url": url}
    return {"type": "non_standard", "value": dict(block)}
