"""A plain class (msgpack cannot write it) in a module of its own, so that a pickle of it is read back
in any process: the graph file itself is imported under a name of graphrun's."""

from __future__ import annotations


class Plan:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
