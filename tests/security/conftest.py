"""The security tests run against both modes, with the compatibility tests' servers: ``graphrun dev``,
and ``graphrun api`` + ``graphrun worker`` on PostgreSQL and Redis (``tests.compat.conftest``). A module
sets ``SERVER_ENV`` and ``CONFIG``. ``receiver``: an HTTP listener of the test's own on loopback, which
records the webhooks that reach it (the acceptance tests')."""

from tests.acceptance.test_webhooks import receiver
from tests.compat.conftest import client, http, pytest_runtest_makereport, target

__all__ = ["client", "http", "pytest_runtest_makereport", "receiver", "target"]
