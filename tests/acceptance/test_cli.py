"""``graphrun dev`` as a user starts it: a broken configuration or a taken port stops it with one clear
line on stderr and exit code 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness.embedded import Server

from ._support import CONFIG

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(60)]


def _graphrun(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRAPHRUN_DATA_DIR": str(data_dir), "GRAPHRUN_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "graphrun", "dev", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"langgraph.json": "{nope"}, "invalid JSON"),
        ({"langgraph.json": '{"graphs": {"a": "./g.py:graph"}, "bogus": 1}'}, "unknown key 'bogus'"),
        ({"langgraph.json": '{"graphs": {"a": "./missing.py:graph"}}'}, "missing.py not found"),
        (
            {"langgraph.json": '{"graphs": {"a": "./g.py:graph"}}', "g.py": "x = 1\n"},
            "has no attribute 'graph'",
        ),
        ({"langgraph.json": '{"graphs": {"a": "./g.py:x"}}', "g.py": "x = 1\n"}, "'x' is a int, not a graph"),
        ({"langgraph.json": '{"graphs": {"a": "no_such_module_xyz:graph"}}'}, "module not found"),
        (
            {"langgraph.json": '{"graphs": {"a": "./g.py:x"}}', "g.py": "raise RuntimeError('kaput')\n"},
            "RuntimeError: kaput",
        ),
    ],
    ids=[
        "bad-json",
        "unknown-key",
        "missing-file",
        "missing-attr",
        "not-a-graph",
        "no-module",
        "import-fails",
    ],
)
def test_a_broken_config_stops_start_up_with_one_clear_line(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    result = _graphrun("--config", str(tmp_path / "langgraph.json"), data_dir=tmp_path / "data")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"graphrun: {tmp_path / 'langgraph.json'}")
    assert expected in lines[0]


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = _graphrun("--config", str(CONFIG), "--port", str(port), data_dir=tmp_path / "data")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"graphrun: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another port with --port or GRAPHRUN_PORT"
    )


def test_dev_says_where_to_go_and_every_address_it_gives_answers(tmp_path: Path) -> None:
    """The banner (on stderr: stdout stays JSON log lines) names the API, the console, the docs, the data
    directory and the graphs; each address it gives answers, and the root leads to the console."""
    server = Server(config=CONFIG, data_dir=tmp_path / "data", log_dir=tmp_path / "logs")
    server.start()
    try:
        banner = (tmp_path / "logs" / "server-1.stderr.log").read_text()
        rows = dict(
            line.strip().split(None, 1)
            for line in banner.splitlines()[1:]
            if line.startswith("  ") and " " in line.strip()
        )
        assert banner.startswith("graphrun dev "), banner
        assert rows["API"] == server.url
        assert rows["Console"] == f"{server.url}/console"
        assert rows["Docs"] == f"{server.url}/docs"
        assert rows["Data"] == str((tmp_path / "data").resolve())
        assert "echo" in rows["Graphs"].split(", ")
        with httpx.Client() as http:
            for name in ("API", "Console", "Docs"):
                assert http.get(rows[name], follow_redirects=True).status_code == 200, name
        stdout = (tmp_path / "logs" / "server-1.stdout.log").read_text().splitlines()
        assert all(json.loads(line) for line in stdout if line.strip())
    finally:
        server.stop()
