"""The deployment tests: tools they fetch are announced on the terminal (tests/deploy/_debian.py)."""

from __future__ import annotations

import pytest

from tests.deploy import _debian


def pytest_configure(config: pytest.Config) -> None:
    _debian.session = config
