"""A loopback TCP port for a server a test starts: bench/_cluster.py's, which the benchmarks use too."""

from bench._cluster import free_port

__all__ = ["free_port"]
