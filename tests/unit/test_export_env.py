"""``langgraph.json``'s ``env`` reaches the process environment without overriding what is already set."""

from __future__ import annotations

import os

import pytest

from graphrun.settings import Settings, export_env


def test_env_from_the_config_fills_gaps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHRUN_TEST_ALREADY_SET", "from-the-shell")
    monkeypatch.delenv("GRAPHRUN_TEST_NEW", raising=False)
    monkeypatch.delenv("GRAPHRUN_WORKER_CONCURRENCY", raising=False)

    export_env({"GRAPHRUN_TEST_ALREADY_SET": "from-config", "GRAPHRUN_TEST_NEW": "from-config"})
    export_env({"GRAPHRUN_WORKER_CONCURRENCY": "7"})

    try:
        assert os.environ["GRAPHRUN_TEST_ALREADY_SET"] == "from-the-shell"
        assert os.environ["GRAPHRUN_TEST_NEW"] == "from-config"
        assert Settings.from_env().worker_concurrency == 7  # server settings may come from the config's env
    finally:
        for name in ("GRAPHRUN_TEST_NEW", "GRAPHRUN_WORKER_CONCURRENCY"):
            os.environ.pop(name, None)
