"""``graphrun dev`` as a user starts it: a broken configuration or a taken port stops it with one clear
line on stderr and exit code 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance._support import CONFIG

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
    assert result.stderr.strip() == f"graphrun: cannot listen on 127.0.0.1:{port}: Address already in use"
