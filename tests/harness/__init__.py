"""The test harness every suite shares, written once.

- ``ports``: ``free_port``, a loopback TCP port for a server a test starts.
- ``waiting``: ``eventually``, polling until a condition holds, with a bound that fails the test.
- ``sdk``: reading what the server answered (SDK errors, SSE frames, system assistant ids).
- ``embedded``: ``Server``, one ``graphrun dev`` process on its own data directory.
- ``cluster``: production processes (``graphrun api`` and ``graphrun worker``) on a fresh PostgreSQL
  database and a Redis database of their own, and throwaway PostgreSQL and Redis servers.
- ``targets``: the ``target`` fixture, one server per mode (embedded and production), with SDK and raw
  HTTP clients on it.

``tests/conftest.py`` attaches the output of every process a failing test used to its report.
"""
