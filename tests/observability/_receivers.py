"""HTTP receivers standing in for the remote ends of observability: an OTLP/HTTP trace collector (its
requests decoded with OpenTelemetry's own protobuf definitions) and a catch-all recorder for LangSmith
and Langfuse. Each runs on a free port of loopback, on a thread, for the tests of this package."""

from __future__ import annotations

import gzip
import http.server
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.harness.ports import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attrs(items: Any) -> dict[str, Any]:
    return {a.key: _value(a.value) for a in items}


@dataclass
class Receiver:
    """Records every request; answers 200 with an empty JSON object (or OTLP's empty response), or
    with the next of ``answers`` (status, JSON body) while there are any."""

    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.requests.append(Request(self.command, self.path, dict(self.headers), body))
                if self.path.endswith("/v1/traces") and "protobuf" in (
                    self.headers.get("content-type") or ""
                ):
                    payload, kind = b"", "application/x-protobuf"
                else:
                    payload, kind = b"{}", "application/json"
                status = 200
                if receiver.answers:
                    status, payload = receiver.answers.pop(0)
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_PATCH = do_GET = _record

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bodies(self) -> bytes:
        return b"\n".join(r.body for r in self.requests)

    def spans(self) -> list[Span]:
        spans: list[Span] = []
        for request in list(self.requests):
            if not request.path.endswith("/v1/traces"):
                continue
            export = ExportTraceServiceRequest()
            export.ParseFromString(request.body)
            for resource_spans in export.resource_spans:
                resource = _attrs(resource_spans.resource.attributes)
                for scope in resource_spans.scope_spans:
                    for s in scope.spans:
                        spans.append(
                            Span(
                                name=s.name,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_id=s.parent_span_id.hex(),
                                attributes=_attrs(s.attributes),
                                resource=resource,
                                status_code=s.status.code,
                                status_message=s.status.message,
                                events=[(e.name, _attrs(e.attributes)) for e in s.events],
                            )
                        )
        return spans
