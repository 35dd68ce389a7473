"""Graphs served as MCP tools: one that adds, one that fails, and one whose input schema cannot be
derived (``typing.TypedDict`` on Python 3.11), which is left out of the tools as on the official
server."""

from __future__ import annotations

import typing

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class Sum(TypedDict, total=False):
    a: int
    b: int
    total: int


def add(state: Sum) -> Sum:
    return {"total": state.get("a", 0) + state.get("b", 0)}


adder = StateGraph(Sum).add_node("add", add).add_edge(START, "add").compile()


def explode(state: Sum) -> Sum:
    raise ValueError("the tool broke")


exploder = StateGraph(Sum).add_node("explode", explode).add_edge(START, "explode").compile()


class Opaque(typing.TypedDict, total=False):
    x: int


def keep(state: Opaque) -> Opaque:
    return {}


opaque = StateGraph(Opaque).add_node("keep", keep).add_edge(START, "keep").compile()
