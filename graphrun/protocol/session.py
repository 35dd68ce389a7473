"""``Session``: a thread's event log read from the start and handed out as numbered protocol events,
with what the official server adds around each run (lifecycle, ``input.requested``); ``run_event`` for
the v3 events a run publishes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from graphrun.protocol.channels import TERMINAL
from graphrun.protocol.messages import state_payload
from graphrun.types import Json


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
