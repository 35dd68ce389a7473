"""``graphrun.graphs``: importing the graphs a ``langgraph.json`` names and binding them to persistence.

Graph files are written to ``tmp_path`` and loaded as the server loads them. Modules loaded by path are
registered as ``graphrun_user.*`` (``graphrun.usercode``) and their folders go on ``sys.path``; the
``isolated_imports`` fixture undoes both after every test so that tests do not see each other's graphs.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict

from graphrun import usercode
from graphrun.config import load_config
from graphrun.errors import ConfigError
from graphrun.graphs import GraphRegistry, LoadedGraph, check_graph, graph_schemas, load_graphs
from graphrun.types import Persistence

GRAPH_SOURCE = """
import contextlib

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    n: int


def inc(state: State) -> State:
    return {"n": state["n"] + 1}


builder = StateGraph(State).add_node("inc", inc).add_edge(START, "inc").add_edge("inc", END)
graph = builder.compile()
EVENTS = []


def make_graph(config):
    EVENTS.append(("sync", config["configurable"]["tenant"]))
    return builder.compile(name=config["configurable"]["tenant"])


def make_graph_without_config():
    return builder.compile(name="no-config")


async def make_graph_async(config):
    EVENTS.append(("async", config["configurable"]["tenant"]))
    return builder.compile(name="async")


@contextlib.asynccontextmanager
async def graph_in_context(config):
    EVENTS.append("enter")
    try:
        yield builder
    finally:
        EVENTS.append("exit")


def broken_factory(config):
    raise RuntimeError("OPENAI_API_KEY is not set")


def not_a_graph_factory(config):
    return 42


number = 42


class NotAGraph:
    pass
"""


@pytest.fixture(autouse=True)
def isolated_imports(tmp_path: Path) -> Iterator[None]:
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    importlib.invalidate_caches()
    yield
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if name.startswith(usercode.PREFIX + ".") or module_file.startswith(str(tmp_path)):
            del sys.modules[name]
    for cached in [p for p in sys.path_importer_cache if p.startswith(str(tmp_path))]:
        del sys.path_importer_cache[cached]


@pytest.fixture
def persistence() -> Persistence:
    return Persistence(checkpointer=InMemorySaver(), store=InMemoryStore())


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def load(tmp_path: Path, graphs: dict[str, Any], **extra: Any) -> dict[str, LoadedGraph]:
    config_path = tmp_path / "langgraph.json"
    config_path.write_text(json.dumps({"graphs": graphs, **extra}), encoding="utf-8")
    return load_graphs(load_config(config_path))


def load_error(tmp_path: Path, graphs: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, graphs, **extra)
    return info.value.message


def run_config(thread_id: str = "t-1", tenant: str = "acme") -> Any:
    return {"configurable": {"thread_id": thread_id, "tenant": tenant}}


@pytest.fixture
def agent_file(tmp_path: Path) -> Path:
    return write(tmp_path / "agent.py", GRAPH_SOURCE)


def user_module(path: Path) -> Any:
    """The module the server loaded from ``path``, registered under ``graphrun_user.*``."""
    found = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith(usercode.PREFIX + ".") and getattr(module, "__file__", None) == str(path.resolve())
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("attr", "is_factory"),
    [("graph", False), ("builder", False), ("make_graph", True), ("make_graph_async", True)],
)
def test_load_graph_forms(agent_file: Path, attr: str, is_factory: bool) -> None:
    loaded = load(agent_file.parent, {"agent": f"./agent.py:{attr}"})

    assert list(loaded) == ["agent"]
    assert loaded["agent"].is_factory is is_factory
    assert loaded["agent"].spec.path == agent_file.resolve()


@pytest.mark.parametrize("attr", ["graph", "builder"])
async def test_registry_binds_graph_to_persistence(
    agent_file: Path, persistence: Persistence, attr: str
) -> None:
    registry = GraphRegistry(load(agent_file.parent, {"agent": f"./agent.py:{attr}"}), persistence)

    async with registry.graph("agent") as graph:
        assert graph.checkpointer is persistence.checkpointer
        assert graph.store is persistence.store
        assert await graph.ainvoke({"n": 1}, run_config()) == {"n": 2}

    saved = await persistence.checkpointer.aget_tuple(run_config())
    assert saved is not None
    assert saved.checkpoint["channel_values"]["n"] == 2


async def test_binding_leaves_the_users_compiled_graph_alone(
    agent_file: Path, persistence: Persistence
) -> None:
    loaded = load(agent_file.parent, {"agent": "./agent.py:graph"})
    registry = GraphRegistry(loaded, persistence)

    async with registry.graph("agent") as graph:
        assert graph is not loaded["agent"].target
    assert loaded["agent"].target.checkpointer is None


@pytest.mark.parametrize(("attr", "kind"), [("make_graph", "sync"), ("make_graph_async", "async")])
async def test_factory_is_called_with_the_run_config(
    agent_file: Path, persistence: Persistence, attr: str, kind: str
) -> None:
    loaded = load(agent_file.parent, {"agent": f"./agent.py:{attr}"})
    registry = GraphRegistry(loaded, persistence)

    async with registry.graph("agent", run_config(tenant="globex")) as graph:
        assert graph.checkpointer is persistence.checkpointer
        assert await graph.ainvoke({"n": 0}, run_config(tenant="globex")) == {"n": 1}

    events = user_module(agent_file).EVENTS
    assert events == [(kind, "globex")]


async def test_factory_without_parameters(agent_file: Path, persistence: Persistence) -> None:
    registry = GraphRegistry(
        load(agent_file.parent, {"agent": "./agent.py:make_graph_without_config"}), persistence
    )

    async with registry.graph("agent", run_config()) as graph:
        assert graph.name == "no-config"
        assert graph.checkpointer is persistence.checkpointer


async def test_factory_returning_an_async_context_manager(agent_file: Path, persistence: Persistence) -> None:
    loaded = load(agent_file.parent, {"agent": "./agent.py:graph_in_context"})
    registry = GraphRegistry(loaded, persistence)
    events = user_module(agent_file).EVENTS

    async with registry.graph("agent", run_config()) as graph:
        assert events == ["enter"]
        assert graph.checkpointer is persistence.checkpointer
        assert await graph.ainvoke({"n": 5}, run_config()) == {"n": 6}

    assert events == ["enter", "exit"]


async def test_registry_lookups(agent_file: Path, persistence: Persistence) -> None:
    loaded = load(
        agent_file.parent,
        {"agent": {"path": "./agent.py:graph", "description": "Counts"}, "other": "./agent.py:builder"},
    )
    registry = GraphRegistry(loaded, persistence)

    assert registry.graph_ids == ["agent", "other"]
    assert "agent" in registry
    assert "missing" not in registry
    assert registry.description("agent") == "Counts"
    assert registry.description("other") is None
    assert registry.persistence is persistence


async def test_module_graph_found_through_dependencies(tmp_path: Path, persistence: Persistence) -> None:
    write(tmp_path / "src" / "unit_pkg_graphs" / "__init__.py", "")
    write(tmp_path / "src" / "unit_pkg_graphs" / "agent.py", GRAPH_SOURCE)

    loaded = load(tmp_path, {"agent": "unit_pkg_graphs.agent:graph"}, dependencies=["./src"])

    assert loaded["agent"].spec.module == "unit_pkg_graphs.agent"
    async with GraphRegistry(loaded, persistence).graph("agent") as graph:
        assert await graph.ainvoke({"n": 1}, run_config()) == {"n": 2}


async def test_graph_file_imports_its_siblings(tmp_path: Path) -> None:
    write(tmp_path / "unit_sibling_helpers.py", "STEP = 10\n")
    write(
        tmp_path / "agent.py",
        GRAPH_SOURCE.replace("import contextlib", "import contextlib\nfrom unit_sibling_helpers import STEP"),
    )

    load(tmp_path, {"agent": "./agent.py:graph"})

    assert user_module(tmp_path / "agent.py").STEP == 10


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        pytest.param("./missing.py:graph", ("graphs.agent", "missing.py", "not found"), id="file-not-found"),
        pytest.param(
            "unit_no_such_module:graph",
            ("graphs.agent", "module not found: unit_no_such_module"),
            id="module-not-found",
        ),
        pytest.param("./agent.py:nope", ("graphs.agent", "no attribute 'nope'"), id="attribute-missing"),
        pytest.param("./agent.py:number", ("graphs.agent", "'number' is a int", "not a graph"), id="an-int"),
        pytest.param(
            "./agent.py:NotAGraph", ("graphs.agent", "'NotAGraph' is a type", "not a graph"), id="a-class"
        ),
        pytest.param("./agent.py:State", ("graphs.agent", "'State'", "not a graph"), id="a-typeddict"),
    ],
)
def test_load_errors(agent_file: Path, spec: str, fragments: tuple[str, ...]) -> None:
    message = load_error(agent_file.parent, {"agent": spec})

    assert message.startswith(f"{(agent_file.parent / 'langgraph.json').resolve()}: "), message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        pytest.param("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import", id="raises"),
        pytest.param(
            "import unit_missing_dependency\n", "module not found: unit_missing_dependency", id="bad-import"
        ),
        pytest.param("def broken(:\n", "SyntaxError", id="syntax-error"),
    ],
)
def test_import_failure_is_a_config_error(tmp_path: Path, source: str, fragment: str) -> None:
    write(tmp_path / "broken.py", source)

    message = load_error(tmp_path, {"agent": "./broken.py:graph"})

    assert "graphs.agent" in message
    assert fragment in message
    assert not [name for name in sys.modules if name.startswith(usercode.PREFIX + ".broken")]


async def test_check_graph_accepts_a_working_factory(agent_file: Path, persistence: Persistence) -> None:
    registry = GraphRegistry(load(agent_file.parent, {"agent": "./agent.py:graph_in_context"}), persistence)

    await check_graph(registry, "agent")


@pytest.mark.parametrize(
    ("attr", "fragments"),
    [
        pytest.param(
            "broken_factory",
            ("'agent'", "building it failed", "RuntimeError: OPENAI_API_KEY is not set"),
            id="factory-raises",
        ),
        pytest.param(
            "not_a_graph_factory", ("'agent'", "factory returned int, not a graph"), id="returns-int"
        ),
    ],
)
async def test_check_graph_turns_a_broken_factory_into_config_error(
    agent_file: Path, persistence: Persistence, attr: str, fragments: tuple[str, ...]
) -> None:
    registry = GraphRegistry(load(agent_file.parent, {"agent": f"./agent.py:{attr}"}), persistence)

    with pytest.raises(ConfigError) as info:
        await check_graph(registry, "agent")

    for fragment in fragments:
        assert fragment in info.value.message, info.value.message


class Question(TypedDict):
    question: str


class Answer(TypedDict):
    answer: str


class QAState(TypedDict):
    question: str
    answer: str
    notes: list[str]


def answer(state: QAState) -> dict[str, Any]:
    return {"answer": state["question"].upper()}


def qa_graph() -> Any:
    builder = StateGraph(QAState, input_schema=Question, output_schema=Answer)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile()


async def test_graph_schemas() -> None:
    schemas = await graph_schemas(qa_graph(), "qa")

    assert schemas["graph_id"] == "qa"
    input_schema, output_schema, state_schema = (
        schemas["input_schema"],
        schemas["output_schema"],
        schemas["state_schema"],
    )
    assert isinstance(input_schema, dict)
    assert isinstance(output_schema, dict)
    assert isinstance(state_schema, dict)
    assert set(input_schema["properties"]) == {"question"}
    assert input_schema["properties"]["question"]["type"] == "string"
    assert set(output_schema["properties"]) == {"answer"}
    assert set(state_schema["properties"]) == {"question", "answer", "notes"}


async def test_graph_schemas_config_schema_uses_no_deprecated_api() -> None:
    # The module avoids get_config_jsonschema because it is deprecated; what it calls must not be either,
    # or every schemas request logs a deprecation warning (and under -W error the schema silently vanishes).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schemas = await graph_schemas(qa_graph(), "qa")

    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
    assert isinstance(schemas["config_schema"], dict)
