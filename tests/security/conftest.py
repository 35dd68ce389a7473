"""The security tests run against both modes, with the compatibility tests' servers: ``graphrun dev``,
and ``graphrun api`` + ``graphrun worker`` on PostgreSQL and Redis (``tests.compat.conftest``). A module
sets ``SERVER_ENV`` and ``CONFIG``."""

from tests.compat.conftest import pytest_runtest_makereport, target

__all__ = ["pytest_runtest_makereport", "target"]
