"""``checkpointer.serde`` read as the official server reads it (``savers.serializer``), and refused with a
message when it is not what the official schema says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from graphrun.config import load_config
from graphrun.errors import ConfigError
from graphrun.savers import serializer


class Plan:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps


def test_without_the_key_a_plain_object_is_refused_and_with_it_pickled() -> None:
    with pytest.raises(TypeError, match="not msgpack serializable"):
        JsonPlusSerializer().dumps_typed(Plan(["a"]))  # LangGraph's default: why the key exists
    serde = serializer({})
    kind, data = serde.dumps_typed(Plan(["a", "b"]))
    assert kind == "pickle"
    assert serde.loads_typed((kind, data)).steps == ["a", "b"]
    strict = serializer({"pickle_fallback": False})
    with pytest.raises(TypeError):
        strict.dumps_typed(Plan(["a"]))


@pytest.mark.parametrize(
    ("serde", "fragment"),
    [
        ("yes", "must be a dict"),
        ({"pickle": True}, "must be an object with allowed_json_modules"),
        ({"allowed_json_modules": "all"}, "must be true or a list of module paths"),
        ({"allowed_json_modules": [["ok"], []]}, "must be true or a list of module paths"),
        ({"pickle_fallback": "no"}, "must be a bool"),
    ],
)
def test_a_bad_serde_section_stops_start_up(tmp_path: Path, serde: Any, fragment: str) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"g": "./g.py:g"}, "checkpointer": {"serde": serde}}))
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_a_good_serde_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    serde = {"allowed_json_modules": [["my_agent", "state", "Plan"]], "pickle_fallback": False}
    path.write_text(json.dumps({"graphs": {"g": "./g.py:g"}, "checkpointer": {"serde": serde}}))
    assert load_config(path).serde == serde
