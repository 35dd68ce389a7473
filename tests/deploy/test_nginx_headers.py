"""What the shipped nginx configuration passes on to the API, seen by an upstream that answers with the
headers it received: a client's ``X-Request-ID`` is kept, and one is made only when the request has none."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.deploy._nginx import Nginx
from tests.harness.ports import free_port

pytestmark = pytest.mark.timeout(60)


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=upstream.serve_forever, name="echo-upstream", daemon=True)
    thread.start()
    proxy = Nginx(free_port(), [f"127.0.0.1:{upstream.server_port}"], Path(tmp_path_factory.mktemp("nginx")))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()


def test_a_clients_request_id_reaches_the_api_unchanged(nginx: Nginx) -> None:
    seen = httpx.get(f"{nginx.url}/threads", headers={"X-Request-ID": "client-chose-this.1"}).json()
    assert seen["x-request-id"] == "client-chose-this.1"


def test_a_request_without_an_id_gets_one_made_by_nginx(nginx: Nginx) -> None:
    first = httpx.get(f"{nginx.url}/threads").json()["x-request-id"]
    second = httpx.get(f"{nginx.url}/threads").json()["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first), first
    assert first != second
