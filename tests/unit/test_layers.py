"""The layering of ``docs/architecture.md``: each module imports only layers below it, never a sibling.

The API never executes graphs; settings are read in one place; SQL lives in the store modules. Those rules
are only true while the import graph says so, so this test reads every module's imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "graphrun"

LAYERS: dict[str, int] = {
    "types": 0,
    "errors": 0,
    "redact": 0,  # pure and stdlib-only: every layer masks secrets before it writes
    "settings": 1,
    "config": 1,
    "models": 1,
    "encoding": 1,
    "sql": 1,
    "telemetry": 1,
    "schedule": 1,  # cron schedules: checked, and their next tick (croniter)
    "usercode": 1,  # imports the user's graphs, auth, savers... by file or module: one rule for all
    "stores": 2,
    "wire": 2,
    "protocol": 2,
    "metrics": 1,
    "instrument": 3,
    "effects": 0,  # for graph authors: a side effect once per task, its result kept in the graph's store
    "fence": 0,  # the running attempt's lease, checked before a checkpoint write (savers, worker)
    "resilience": 2,  # for graph authors: classifier, retries, breakers (reports to metrics)
    "banner": 0,  # the start-up banner's text (imports no graphrun module)
    "testing": 0,  # for graph authors: a fault-injecting chat model (imports no graphrun module)
    "graphs": 3,
    "priority": 3,  # a thread's priority settings from priority.path, for the API's runs and the crons'
    "checkpointer": 3,
    "savers": 3,
    "streams": 3,
    "runner": 4,
    "webhooks": 4,
    "crons": 4,  # a cron's run template, and firing the due ones through the store
    "alerts": 4,  # graphrun alert-relay: Alertmanager's webhook to Slack, Feishu and DingTalk
    "redisbus": 4,  # an EventBus over Redis: above streams, whose protocol and types it implements
    "api": 5,
    "worker": 5,
    "serve": 6,
    "cli": 7,
    "__main__": 8,  # `python -m graphrun`, a shim over cli
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def _unit(path: Path) -> str:
    """The top-level unit a file belongs to: ``api/routes/runs.py`` -> ``api``."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "graphrun":
                names = [alias.name for alias in node.names]
            elif node.module.startswith("graphrun."):
                names = [node.module.split(".")[1]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("graphrun.")]
        found.update(names)
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in _modules()}
    assert units - set(LAYERS) == set(), "give new modules a layer in this test and in docs/architecture.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_only_to_lower_layers(path: Path) -> None:
    unit = _unit(path)
    wrong = {
        other
        for other in _imported_units(path) - {unit, "__version__"}
        if other in LAYERS and LAYERS[other] >= LAYERS[unit]
    }
    assert wrong == set(), f"{unit} (layer {LAYERS[unit]}) imports {sorted(wrong)}"


def _imported_modules(source: str) -> set[str]:
    """Every ``graphrun...`` module a file imports, by full dotted name (``from graphrun.api import
    schemas`` counts as ``graphrun.api.schemas``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "graphrun" or node.module.startswith("graphrun."):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("graphrun"))
    return found


# Edges the layer numbers alone would allow, but which matter most: the API never executes a graph (it
# may not reach the runner or the worker); and route modules are leaves that only ``api/app.py`` mounts:
# a route calls shared modules of ``api/`` (run submission is ``api/submit.py``), never another route,
# and no shared module reaches up into a route. Each rule: where it applies, what is banned there, and
# the modules it exempts.
FORBIDDEN: list[tuple[str, tuple[str, ...], frozenset[str]]] = [
    ("api/", ("graphrun.runner", "graphrun.worker"), frozenset()),
    ("api/", ("graphrun.api.routes",), frozenset({"api/app.py"})),
]


def _violations(where: str, source: str) -> list[str]:
    """The forbidden edges of the module at ``where`` (``api/routes/runs.py``) whose text is ``source``."""
    return sorted(
        f"{where} imports {module}"
        for prefix, banned, exempt in FORBIDDEN
        if where.startswith(prefix) and where not in exempt
        for module in _imported_modules(source)
        if any(module == target or module.startswith(target + ".") for target in banned)
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_forbidden_edges(path: Path) -> None:
    where = str(path.relative_to(PACKAGE))
    assert _violations(where, path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("where", "source", "found"),
    [
        ("api/routes/crons.py", "from graphrun.api.routes.runs import create", True),
        ("api/routes/mcp.py", "from graphrun.api.routes import runs", True),
        ("api/routes/mcp.py", "import graphrun.api.routes.runs", True),
        ("api/routes/mcp.py", "from graphrun.api.submit import create", False),
        ("api/app.py", "from graphrun.api.routes import runs", False),
        ("api/_protocol.py", "from graphrun.api.routes.runs import create", True),
        ("api/app.py", "from graphrun import runner", True),
        ("api/deps.py", "import graphrun.worker", True),
        ("api/_runs.py", "from graphrun.runner import Runner", True),
        ("serve.py", "from graphrun.runner import Runner", False),
    ],
)
def test_forbidden_edges_are_found(where: str, source: str, found: bool) -> None:
    """The check above sees each form an import can take (a check that cannot fail is no check)."""
    assert bool(_violations(where, source)) is found


# The modules that may read the process environment, and why: settings.py is where the server reads
# it; testing.py is a graph author's helper whose GRAPHRUN_FAULTS the graph's own code reads, like a
# provider's API key (see its docstring).
ENVIRONMENT_READERS = {"settings.py", "testing.py"}


def _reads_environment(source: str) -> bool:
    names = ("environ", "environb", "getenv")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in names and ast.unparse(node.value) == "os":
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in names for a in node.names)
        ):
            return True
    return False


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_settings_reads_the_environment(path: Path) -> None:
    where = str(path.relative_to(PACKAGE))
    if where not in ENVIRONMENT_READERS:
        assert not _reads_environment(path.read_text(encoding="utf-8")), f"{where} reads os.environ"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import os\nx = os.environ['A']", True),
        ("import os\nx = os.getenv('A')", True),
        ("from os import environ", True),
        ("import os\nx = os.path.join('a')", False),
    ],
)
def test_environment_reads_are_found(source: str, found: bool) -> None:
    assert _reads_environment(source) is found
