"""Built-in API keys: the official SDK's ``api_key`` (``x-api-key``) and ``Authorization: Bearer`` are let
in, keys from the setting and from a file of digests alike; anything else is 401 with a message; probes
need no key. Each key's owner sees only its own resources (tests/security/test_isolation.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.harness.embedded import Server, embedded

from ._support import CONFIG

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-fedcba9876543210"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("keys")
    keys_file = base / "keys.txt"
    keys_file.write_text(
        f"# bob's key, as its digest only\nbob sha256:{hashlib.sha256(BOB.encode()).hexdigest()}\n"
    )
    env = {"GRAPHRUN_API_KEYS": f"alice={ALICE}", "GRAPHRUN_API_KEYS_FILE": str(keys_file)}
    with embedded(base, CONFIG, env) as server:
        yield server


async def test_the_sdks_api_key_and_a_bearer_token_are_let_in(keyed: Server) -> None:
    async with get_client(url=keyed.url, api_key=ALICE) as alice:
        thread = await alice.threads.create()
        run = await alice.runs.wait(thread["thread_id"], "echo", input={"messages": []})
    assert run is not None
    async with httpx.AsyncClient(base_url=keyed.url, headers={"authorization": f"Bearer {BOB}"}) as bob:
        own = await bob.post("/threads", json={})
        assert own.status_code == 200, own.text
        assert (await bob.get(f"/threads/{own.json()['thread_id']}")).status_code == 200
        alices = await bob.get(f"/threads/{thread['thread_id']}")
    assert alices.status_code == 404, alices.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "not-a-key-of-anyone"},
        {"authorization": "Bearer"},
        {"authorization": f"Basic {ALICE}"},
    ],
    ids=["none", "unknown", "empty-bearer", "basic"],
)
async def test_without_a_known_key_every_route_is_401(keyed: Server, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=keyed.url, headers=headers) as http:
        answers = [
            await http.post("/threads", json={}),
            await http.post("/threads/search", json={}),
            await http.get("/info"),
            await http.post("/runs/wait", json={"assistant_id": "echo", "input": {}}),
            await http.get("/metrics"),
        ]
    for answer in answers:
        assert answer.status_code == 401, answer.request.url
        assert "API key" in answer.json()["detail"]
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_probes_need_no_key(keyed: Server) -> None:
    async with httpx.AsyncClient(base_url=keyed.url) as http:
        assert (await http.get("/ok")).status_code == 200
        assert (await http.get("/ready")).status_code == 200


def test_a_bad_keys_file_stops_start_up_with_a_message(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("alice plaintext-key\n")
    server = Server(
        config=CONFIG,
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        extra_env={"GRAPHRUN_API_KEYS_FILE": str(keys_file)},
    )
    with pytest.raises(RuntimeError):
        server.start()
    server.stop()
    assert "expected '<owner> sha256:<64 hex digits>'" in server.logs()


def _graphrun_stats(server: Server, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "LANGGRAPH_API_KEY"} | env
    argv = [sys.executable, "-m", "graphrun", "stats", "--url", server.url, *args]
    return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=60, check=False)


def test_graphrun_stats_sends_the_key_from_its_flag_or_the_environment(keyed: Server) -> None:
    refused = _graphrun_stats(keyed, env={})
    assert refused.returncode == 2
    assert "401" in refused.stderr
    assert "--api-key or LANGGRAPH_API_KEY" in refused.stderr
    by_flag = _graphrun_stats(keyed, "--api-key", ALICE, env={})
    assert by_flag.returncode == 0, by_flag.stderr
    assert "threads active" in by_flag.stdout
    by_env = _graphrun_stats(keyed, "--json", env={"LANGGRAPH_API_KEY": BOB})
    assert by_env.returncode == 0, by_env.stderr
    assert "threads_active" in by_env.stdout
    flag_wins = _graphrun_stats(keyed, "--api-key", "wrong", env={"LANGGRAPH_API_KEY": BOB})
    assert flag_wins.returncode == 2
    assert "401" in flag_wins.stderr
