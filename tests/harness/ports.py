"""A loopback TCP port for a server a test starts."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port that was free a moment ago (the server binds it right after; a race we accept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
