"""Tools the deployment tests fetch from Debian are said as they are fetched, with their size (they
were fetched silently: about 166 MB for nginx, Prometheus and Alertmanager)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy import _debian


def test_a_fetched_tool_is_said_with_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("hello"):
        pytest.skip("GNU hello (the small package this test fetches) is installed: nothing would be fetched")
    monkeypatch.setattr(_debian, "UNPACKED", tmp_path)
    monkeypatch.setattr(_debian, "session", None)  # said on stderr, where capsys sees it

    binary = _debian.debian_tool("hello", "hello")

    assert binary.is_file()
    said = capsys.readouterr().err.splitlines()
    home = tmp_path / "hello"
    assert f"deploy tests: hello is not installed: fetching Debian's hello package into {home} (once)" in said
    assert any(
        line.startswith("deploy tests: fetched hello_") and " MB unpacked in " in line for line in said
    )
