"""The security tests run against both modes (tests/harness/targets.py): ``graphrun dev``, and ``graphrun
api`` + ``graphrun worker`` on PostgreSQL and Redis. A module sets ``SERVER_ENV`` and ``CONFIG``.
``receiver``: an HTTP listener of the test's own on loopback, which records the webhooks that reach it
(the acceptance tests')."""

from tests.acceptance.test_webhooks import receiver
from tests.harness.targets import client, http, target

__all__ = ["client", "http", "receiver", "target"]
