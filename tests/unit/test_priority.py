"""``priority.path``: the file is named as the official CLI names it, the object must be a
``langgraph_sdk.Priority`` with an assign function, and what that function returns is read as the
official SDK documents ``PrioritySettings``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from graphrun import errors
from graphrun.config import load_config
from graphrun.errors import ConfigError
from graphrun.graphs import load_priority
from graphrun.priority import settings_of

pytestmark = pytest.mark.filterwarnings("ignore::langgraph_sdk.encryption.LangGraphBetaWarning")

GRAPH = "from langgraph.graph import StateGraph\n"


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (None, (0, "default")),
        ({}, (0, "default")),
        ({"priority": None, "fairness_group": None}, (0, "default")),
        ({"priority": -5}, (-5, "default")),
        ({"priority": 5, "fairness_group": "org-1"}, (5, "org-1")),
        ({"fairness_group": ""}, (0, "default")),
    ],
)
def test_settings_as_the_sdk_documents_them(returned: Any, expected: tuple[int, str]) -> None:
    assert settings_of(returned) == expected


@pytest.mark.parametrize(
    ("returned", "says"),
    [
        ({"priority": 6}, "from -5 to 5"),
        ({"priority": -6}, "from -5 to 5"),
        ({"priority": 1.5}, "from -5 to 5"),
        ({"priority": True}, "from -5 to 5"),
        ({"fairness_group": "x" * 257}, "longer than 256"),
        ({"fairness_group": 3}, "must be a string"),
        ({"prio": 1}, "unknown key 'prio'"),
        (["priority", 1], "a dict or None"),
    ],
)
def test_settings_out_of_range_are_refused(returned: Any, says: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=says):
        settings_of(returned)


def _config(tmp_path: Path, priority: Any, source: str | None = None) -> Path:
    (tmp_path / "agent.py").write_text(GRAPH + "graph = None\n", encoding="utf-8")
    if source is not None:
        (tmp_path / "prio.py").write_text(textwrap.dedent(source), encoding="utf-8")
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"a": "./agent.py:graph"}, "priority": priority}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("priority", "says"),
    [
        ({"path": "./prio.py"}, "'priority.path' must be './file.py:attribute'"),
        ({"path": 3}, "'priority.path' must be './file.py:attribute'"),
        ({"path": "./prio.py:p", "extra": 1}, "unknown key 'priority.extra'"),
        ("./prio.py:p", "'priority' must be an object"),
    ],
)
def test_a_malformed_priority_section_stops_start_up(tmp_path: Path, priority: Any, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(_config(tmp_path, priority))


def test_the_priority_object_is_loaded_with_its_assign_function(tmp_path: Path) -> None:
    source = """
        from langgraph_sdk import Priority
        p = Priority()

        @p.assign
        async def assign(ctx):
            return {"priority": -1}
    """
    loaded = load_priority(load_config(_config(tmp_path, {"path": "./prio.py:p"}, source)))
    assert loaded is not None
    assert loaded._assign_handler is not None


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("p = object()\n", "is object, not a langgraph_sdk.Priority"),
        ("from langgraph_sdk import Priority\np = Priority()\n", "has no assign function"),
    ],
)
def test_anything_else_stops_start_up(tmp_path: Path, source: str, says: str) -> None:
    config = load_config(_config(tmp_path, {"path": "./prio.py:p"}, source))
    with pytest.raises(ConfigError, match=says):
        load_priority(config)


def test_without_priority_path_there_is_none(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(GRAPH + "graph = None\n", encoding="utf-8")
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {"a": "./agent.py:graph"}}), encoding="utf-8")
    assert load_priority(load_config(path)) is None
