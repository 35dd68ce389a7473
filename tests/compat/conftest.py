"""The compatibility tests run against one real server per mode (tests/harness/targets.py): ``graphrun
dev`` (embedded, SQLite) and ``graphrun api`` + ``graphrun worker`` on PostgreSQL and Redis. A module may
define ``SERVER_ENV: dict[str, str]`` to start its servers with extra settings, and ``CONFIG: Path`` to
serve another ``langgraph.json`` than this folder's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.targets import client, http, target

__all__ = ["client", "http", "target", "target_config"]

CONFIG = Path(__file__).resolve().parent / "langgraph.json"


@pytest.fixture(scope="module")
def target_config() -> Path:
    return CONFIG
