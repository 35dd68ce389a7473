"""The README's examples, pasted as a reader pastes them (Python blocks run as files, shell blocks in
bash from the repository's root), against ``graphrun dev`` on the example agent: each runs as written
and prints what its comments say. Only the port differs (the server's own instead of 2024)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance._support import offline_server
from tests.harness.embedded import Server

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```(python|bash)\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
# What each example that talks to the server must print; blocks that set up, serve or deploy are not run.
EXPECTED = {
    "runs.wait(": "The result is 42.",
    "threads.stream(": "Email sent to ann@example.com",
    "crons.create_for_thread(": "+00:00",  # the next tick's date
    "curl -s localhost:2024/assistants/search": "The result is 4.",
    "post() {": "Email sent to ann@example.com",
    "graphrun stats": "threads active",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example agent, offline."""
    with offline_server(tmp_path_factory, "readme") as srv:
        yield srv


def test_every_example_that_talks_to_the_server_is_checked() -> None:
    checked = [b for _, b in BLOCKS if any(marker in b for marker in EXPECTED)]
    assert len(checked) == len(EXPECTED)


@pytest.mark.parametrize("marker", list(EXPECTED))
def test_a_readme_example_runs_as_written(server: Server, marker: str, tmp_path: Path) -> None:
    language, body = next((lang, b) for lang, b in BLOCKS if marker in b)
    if language == "bash" and not shutil.which("curl") and "curl" in body:
        pytest.skip("curl is not installed (Debian: apt-get install curl)")
    pasted = body.replace("2024", str(server.port))
    if language == "python":
        (tmp_path / "example.py").write_text(pasted)
        argv = [sys.executable, str(tmp_path / "example.py")]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", pasted]
    # From the repository's root, as the README's reader (no activated .venv: `graphrun` is not on PATH).
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    assert EXPECTED[marker] in done.stdout, done.stdout[-2000:]
