"""Unit tests: pure and in-process modules, no network and no server processes."""
