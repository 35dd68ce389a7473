"""deploy/Dockerfile built and run (on an engine that tests/deploy/_engine.py finds or starts, FROM a
stand-in of python:3.11-slim-bookworm made from Debian's packages): a non-root graphrun as PID 1, its
HEALTHCHECK turning healthy, the example agent answering a run, and SIGTERM with streams open ending
them cleanly and exiting 0 within the grace period. The image stays under its size budget with no
layer of wheels deleted later. Containers use the host's network (the private engine has no default
bridge), on a free loopback port."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.deploy._debian import say
from tests.deploy.conftest import Image
from tests.harness.ports import free_port

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(1800)]

MAX_IMAGE_BYTES = 350 * 10**6
# compose's stop_grace_period for the APIs, and Kubernetes' terminationGracePeriodSeconds: 30 s.
GRACE_S = 30.0


@dataclass
class Container:
    image: Image
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inspect(self, template: str) -> str:
        return self.image.engine.docker("inspect", "-f", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = self.image.engine.docker("logs", "--tail", "200", self.name, check=False)
        return result.stdout + result.stderr


@pytest.fixture
def container(image: Image) -> Iterator[Container]:
    port = free_port()
    name = f"graphrun-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    image.engine.docker(
        "run", "-d", "--name", name, "--network", "host",
        "-e", "GRAPHRUN_HOST=127.0.0.1", "-e", f"GRAPHRUN_PORT={port}",
        "--health-interval", "2s", "--health-start-period", "60s",
        image.tag,
    )  # fmt: skip
    box = Container(image, name, port)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{box.url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no /ok after 120 s:\n{box.logs()}"
            assert box.inspect("{{.State.Running}}") == "true", f"the container stopped:\n{box.logs()}"
            time.sleep(0.2)
        say(f"deploy tests: docker run to /ok: {time.monotonic() - started:.1f} s")
        yield box
    finally:
        image.engine.docker("rm", "-f", "-v", name, check=False)


def test_the_image_is_small_and_deletes_no_layer_it_copied(image: Image) -> None:
    assert image.size_bytes <= MAX_IMAGE_BYTES, f"{image.size_bytes / 1e6:.0f} MB"
    history = image.engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.tag).stdout
    assert "/wheels" not in history
    config = json.loads(image.engine.docker("image", "inspect", "-f", "{{json .Config}}", image.tag).stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["graphrun"]
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_graphrun_runs_as_pid_1_without_root_and_turns_healthy(container: Container) -> None:
    engine = container.image.engine
    pid1 = engine.docker("exec", container.name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid1[:3] == ["/opt/graphrun/bin/python", "/opt/graphrun/bin/graphrun", "dev"], pid1
    assert engine.docker("exec", container.name, "id", "-u").stdout.strip() == "10001"
    status = ""
    deadline = time.monotonic() + 120
    while status != "healthy" and time.monotonic() < deadline:
        status = container.inspect("{{.State.Health.Status}}")
        assert status in ("starting", "healthy"), container.logs()
        time.sleep(1)
    assert status == "healthy", container.logs()


async def test_the_example_agent_answers_a_run(container: Container) -> None:
    async with get_client(url=container.url, api_key=None) as client:
        thread = await client.threads.create()
        question: dict[str, Any] = {"messages": [{"role": "user", "content": "what is 6*7?"}]}
        output = await client.runs.wait(thread["thread_id"], "agent", input=question)
    assert isinstance(output, dict)
    assert "42" in output["messages"][-1]["content"], output


def test_sigterm_ends_open_streams_cleanly_and_exits_0(container: Container) -> None:
    thread_id = httpx.post(f"{container.url}/threads", json={}).json()["thread_id"]
    ended: list[BaseException | None] = []
    opened = threading.Event()

    def follow() -> None:
        try:
            with httpx.stream("GET", f"{container.url}/threads/{thread_id}/stream", timeout=GRACE_S) as r:
                r.raise_for_status()
                opened.set()
                for _ in r.iter_bytes():
                    pass
            ended.append(None)
        except BaseException as exc:  # the test below says what it was
            ended.append(exc)
            opened.set()

    reader = threading.Thread(target=follow, name="thread-stream", daemon=True)
    reader.start()
    assert opened.wait(30), "the thread stream did not open"
    started = time.monotonic()
    container.image.engine.docker("kill", "--signal", "TERM", container.name)
    code = container.image.engine.docker("wait", container.name, timeout_s=GRACE_S).stdout.strip()
    took_s = time.monotonic() - started
    say(f"deploy tests: SIGTERM to exit: {took_s:.1f} s")
    reader.join(10)
    assert code == "0", container.logs()
    assert ended == [None], f"the stream did not end cleanly: {ended}"
