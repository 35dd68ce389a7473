"""The graphs a ``langgraph.json`` names: imported once at start-up, compiled with the server's persistence.

A graph may be given as a compiled graph, an uncompiled ``StateGraph``, or a factory (sync or async, or
a context manager) that is called for every run and every read of the graph, as the LangGraph CLI
allows. A factory takes nothing, the config, the server runtime (``langgraph_sdk.runtime.ServerRuntime``:
why the graph is wanted, the user, the store and, for a run, its context), or both, told apart as the
official server tells them: by the ``ServerRuntime`` annotation, and here also by the name ``runtime``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import typing
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig, ensure_config
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.types import StateSnapshot
from langgraph_sdk import Auth, Priority
from langgraph_sdk.runtime import ServerRuntime, _ExecutionRuntime, _ReadRuntime
from pydantic import ConfigDict, create_model
from starlette.applications import Starlette

from graphrun import encoding, usercode
from graphrun.config import GraphSpec, LanggraphConfig
from graphrun.errors import ConfigError
from graphrun.types import Json, Persistence

# Why the server wants a graph, as the official server tells a factory (``ServerRuntime.access_context``).
AccessContext = Literal["threads.create_run", "threads.update", "threads.read", "assistants.read"]
# What a factory is called with: keyword arguments from the run's config and the server runtime.
_FactoryArgs = Callable[[RunnableConfig, Any], dict[str, Any]]


@dataclass(frozen=True)
class LoadedGraph:
    spec: GraphSpec
    target: Any  # a Pregel, a StateGraph or a factory
    factory_args: _FactoryArgs | None = None  # for a factory: how it is called

    @property
    def is_factory(self) -> bool:
        return not isinstance(self.target, (Pregel, StateGraph))


class GraphRegistry:
    """Every configured graph by id; hands out graphs bound to the process's checkpointer and store."""

    def __init__(self, graphs: Mapping[str, LoadedGraph], persistence: Persistence) -> None:
        self._graphs = dict(graphs)
        self._persistence = persistence
        # A compiled graph holds no per-run state, so graphs that are not factories are bound (and
        # StateGraphs compiled) once, not on every run.
        self._bound = {
            graph_id: self._bind(loaded.spec, loaded.target)
            for graph_id, loaded in self._graphs.items()
            if not loaded.is_factory
        }

    @property
    def persistence(self) -> Persistence:
        return self._persistence

    @property
    def graph_ids(self) -> list[str]:
        return list(self._graphs)

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self._graphs

    def description(self, graph_id: str) -> str | None:
        return self._graphs[graph_id].spec.description

    @contextlib.asynccontextmanager
    async def graph(
        self,
        graph_id: str,
        config: RunnableConfig | None = None,
        *,
        access: AccessContext = "assistants.read",
        context: Any = None,
    ) -> AsyncIterator[Pregel[Any, Any]]:
        """The graph, compiled with the server's checkpointer and store. A factory is called here, told
        why (``access``) and, for a run (``threads.create_run``), given the run's ``context``."""
        bound = self._bound.get(graph_id)
        if bound is not None:
            yield bound
            return
        loaded = self._graphs[graph_id]
        runtime = server_runtime(access, self._persistence.store, context)
        # As the official server: a factory always gets a whole config (``configurable`` and all).
        async with _materialize(loaded, ensure_config(config), runtime) as obj:
            yield self._bind(loaded.spec, obj)

    def _bind(self, spec: GraphSpec, obj: Any) -> Pregel[Any, Any]:
        p = self._persistence
        if isinstance(obj, StateGraph):
            return obj.compile(checkpointer=p.checkpointer, store=p.store)
        if isinstance(obj, Pregel):
            return obj.copy(update={"checkpointer": p.checkpointer, "store": p.store})
        raise ConfigError(
            f"graph {spec.graph_id!r} ({spec.source}): factory returned {type(obj).__name__}, not a graph"
        )


def load_graphs(config: LanggraphConfig) -> dict[str, LoadedGraph]:
    """Import every graph of the config. Raises ``ConfigError`` naming the graph and what is wrong."""
    usercode.add_to_path(config.dependencies)
    loaded = {}
    for spec in config.graphs:
        target = _import_target(config.path, spec)
        args = None
        if not isinstance(target, (Pregel, StateGraph)):
            args = _factory_args(target, f"{config.path}: graphs.{spec.graph_id} ({spec.source})")
        loaded[spec.graph_id] = LoadedGraph(spec, target, args)
    return loaded


def load_auth(config: LanggraphConfig) -> Auth | None:
    """The ``langgraph_sdk.Auth`` object ``auth.path`` names (``./auth.py:auth`` or ``pkg.mod:auth``),
    imported as graphs are (``usercode``); None without ``auth.path``."""
    source = (config.auth or {}).get("path")
    if not source:
        return None
    where = f"{config.path}: auth.path ({source})"
    auth, attr = _load_object(config, where, str(source))
    if not isinstance(auth, Auth):
        raise ConfigError(f"{where}: {attr!r} is {type(auth).__name__}, not a langgraph_sdk.Auth")
    return auth


def load_priority(config: LanggraphConfig) -> Priority | None:
    """The ``langgraph_sdk.Priority`` that ``priority.path`` names, with its assign function; None
    without ``priority.path``."""
    source = config.priority_path
    if not source:
        return None
    where = f"{config.path}: priority.path ({source})"
    priority, attr = _load_object(config, where, source)
    if not isinstance(priority, Priority):
        raise ConfigError(f"{where}: {attr!r} is {type(priority).__name__}, not a langgraph_sdk.Priority")
    if priority._assign_handler is None:
        raise ConfigError(f"{where}: {attr!r} has no assign function (register one with @{attr}.assign)")
    return priority


def load_http_app(config: LanggraphConfig) -> Starlette | None:
    """The Starlette (or FastAPI) app ``http.app`` names, whose routes graphrun serves beside its own;
    None without ``http.app``."""
    source = (config.http or {}).get("app")
    if not source:
        return None
    where = f"{config.path}: http.app ({source})"
    app, attr = _load_object(config, where, str(source))
    if not isinstance(app, Starlette):
        raise ConfigError(f"{where}: {attr!r} is {type(app).__name__}, not a Starlette or FastAPI app")
    return app


def load_store_index(config: LanggraphConfig) -> dict[str, Any] | None:
    """``store.index`` as the official stores take it (``dims``, ``embed``, ``fields``). An ``embed``
    naming a file or an importable module (``./embed.py:fn``, ``pkg.mod:embeddings``) is loaded here,
    an ``Embeddings`` object or an embedding function; anything else is a provider string such as
    ``openai:text-embedding-3-small``, which LangGraph resolves with ``init_embeddings``."""
    index = (config.store or {}).get("index")
    if not index:
        return None
    embed: Any = str(index["embed"])
    target = embed.rpartition(":")[0]
    # As the official server: `x.py:attr` is a file. graphrun also takes `pkg.mod:attr`, a module,
    # when its first part is not one of LangChain's embedding providers (`openai:...` stays a provider).
    is_file = ".py:" in embed
    is_module = bool(target) and target.split(".")[0] not in _embedding_providers()
    if is_file or (is_module and importlib.util.find_spec(target.split(".")[0]) is not None):
        where = f"{config.path}: store.index.embed ({embed})"
        embed, attr = _load_object(config, where, embed)
        if embed is None or not (callable(embed) or hasattr(embed, "aembed_documents")):
            raise ConfigError(f"{where}: {attr!r} is not an Embeddings object or an embedding function")
    found: dict[str, Any] = {"dims": int(index["dims"]), "embed": embed}
    if index.get("fields") is not None:
        found["fields"] = list(index["fields"])
    return found


def _embedding_providers() -> frozenset[str]:
    """The providers ``init_embeddings`` knows (``openai``, ``cohere``, ...)."""
    from langchain.embeddings import base

    return frozenset(getattr(base, "_BUILTIN_PROVIDERS", {})) | {"openai"}


def _load_object(config: LanggraphConfig, where: str, source: str) -> tuple[Any, str]:
    """The object ``source`` names, or None when its module lacks the attribute (the caller says what
    it expected instead)."""
    target, attr = usercode.split(source)
    try:
        module = usercode.import_target(target, config.base_dir)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from exc
    return getattr(module, attr, None), attr


def _import_target(config_path: Path, spec: GraphSpec) -> Any:
    where = f"{config_path}: graphs.{spec.graph_id} ({spec.source})"
    try:
        module = usercode.import_target(spec.path or spec.module or "", config_path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from exc
    if not hasattr(module, spec.attr):
        raise ConfigError(f"{where}: module has no attribute {spec.attr!r}")
    target = getattr(module, spec.attr)
    is_graph = isinstance(target, (Pregel, StateGraph))
    if not is_graph and (not callable(target) or isinstance(target, type)):
        raise ConfigError(
            f"{where}: {spec.attr!r} is a {type(target).__name__}, not a graph or a graph factory"
        )
    return target


@contextlib.asynccontextmanager
async def _materialize(loaded: LoadedGraph, config: RunnableConfig, runtime: Any) -> AsyncIterator[Any]:
    """Yield the graph object; for a factory, call it with what its signature asks for."""
    if not loaded.is_factory:
        yield loaded.target
        return
    factory: Callable[..., Any] = loaded.target
    kwargs = loaded.factory_args(config, runtime) if loaded.factory_args is not None else {}
    result = factory(config) if kwargs is _POSITIONAL_CONFIG else factory(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, contextlib.AbstractAsyncContextManager):
        async with result as graph:
            yield graph
    elif isinstance(result, contextlib.AbstractContextManager):
        with result as graph:
            yield graph
    else:
        yield result


def server_runtime(access: AccessContext, store: BaseStore, context: Any = None, user: Any = None) -> Any:
    """The ``ServerRuntime`` the official server hands a factory: the execution variant (with the run's
    context) for a run, the read variant otherwise. The classes are the SDK's own, so a factory that
    checks ``runtime.execution_runtime`` or ``isinstance`` behaves as it does on the official server."""
    if access == "threads.create_run":
        return _ExecutionRuntime(access_context=access, user=user, store=store, context=copy.copy(context))
    return _ReadRuntime(access_context=access, user=user, store=store)


# Returned by a factory's argument builder when it takes the config positionally (``*args``).
_POSITIONAL_CONFIG: dict[str, Any] = {}
# Names under which a factory's annotations may refer to the runtime and the config.
_HINT_NAMES: dict[str, Any] = {"ServerRuntime": ServerRuntime, "RunnableConfig": RunnableConfig}


def _factory_args(fn: Callable[..., Any], where: str) -> _FactoryArgs:
    """How to call a factory, decided once at start-up from its signature (0, 1 or 2 parameters: the
    config and/or the server runtime). Anything else stops start-up with a message saying why."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return lambda config, runtime: {}
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return lambda config, runtime: _POSITIONAL_CONFIG
    params = [p for p in params if p.kind is not p.VAR_KEYWORD]
    try:
        hints = typing.get_type_hints(fn, localns=_HINT_NAMES)
    except Exception:  # an annotation that does not resolve: fall back to names
        hints = {}
    runtime_at = [i for i, p in enumerate(params) if _is_runtime(p, hints)]
    if len(params) == 0:
        return lambda config, runtime: {}
    if len(params) == 1:
        (name,) = (p.name for p in params)
        if runtime_at:
            return lambda config, runtime: {name: runtime}
        return lambda config, runtime: {name: config}
    if len(params) == 2 and len(runtime_at) == 1:
        runtime_name = params[runtime_at[0]].name
        config_name = params[1 - runtime_at[0]].name
        return lambda config, runtime: {runtime_name: runtime, config_name: config}
    names = ", ".join(p.name for p in params)
    raise ConfigError(
        f"{where}: a graph factory takes nothing, the config, the server runtime, or the config and "
        f"the runtime (annotated ServerRuntime or named 'runtime'); this one takes ({names})"
    )


def _is_runtime(param: inspect.Parameter, hints: dict[str, Any]) -> bool:
    annotation = hints.get(param.name, param.annotation)
    if annotation is param.empty:
        return param.name == "runtime"
    return _is_runtime_annotation(annotation)


def _is_runtime_annotation(annotation: Any) -> bool:
    if annotation is ServerRuntime:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, (_ExecutionRuntime, _ReadRuntime))
    origin = typing.get_origin(annotation)
    if origin is ServerRuntime:
        return True
    args = typing.get_args(annotation)
    return origin is not None and bool(args) and _is_runtime_annotation(args[0])


async def check_graph(registry: GraphRegistry, graph_id: str) -> None:
    """Materialize a graph once at start-up so that a broken factory stops the server, not a run."""
    try:
        async with registry.graph(graph_id):
            pass
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"graph {graph_id!r}: building it failed: {type(exc).__name__}: {exc}") from exc


async def graph_schemas(graph: Pregel[Any, Any], graph_id: str) -> dict[str, Any]:
    """The input, output, state, config and context JSON schemas, as ``GET /assistants/{id}/schemas``."""
    return {
        "graph_id": graph_id,
        "input_schema": _safe(graph.get_input_jsonschema),
        "output_schema": _safe(graph.get_output_jsonschema),
        "state_schema": _safe(lambda: _state_jsonschema(graph)),
        "config_schema": _safe(lambda: _config_jsonschema(graph)),
        "context_schema": _safe(graph.get_context_jsonschema),
    }


def _safe(fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    # A schema that cannot be derived (arbitrary types in state) is reported as absent, as the official
    # server does, rather than failing the whole request.
    try:
        return fn()
    except Exception:
        return None


def _state_jsonschema(graph: Pregel[Any, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in graph.stream_channels_list:
        channel: Any = graph.channels[name]
        fields[name] = (channel.ValueType | None, None)
    model = create_model(
        graph.get_name("State"), __config__=ConfigDict(arbitrary_types_allowed=True), **fields
    )
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def _config_jsonschema(graph: Pregel[Any, Any]) -> dict[str, Any]:
    # LangGraph 1.x deprecates config schemas in favour of context schemas, but clients still ask for
    # config_schema; read it without letting the deprecation warning escape into the server's logs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        schema: dict[str, Any] = graph.config_schema().model_json_schema()
    return schema


def thread_interrupts(state: StateSnapshot) -> dict[str, list[Json]]:
    """Pending interrupts by task id, as the official server shows them on the thread."""
    found: dict[str, list[Json]] = {}
    for task in state.tasks:
        if task.interrupts:
            found[task.id] = encoding.jsonable(list(task.interrupts))
    return found
