"""``langgraph.json``: the LangGraph CLI's configuration format, parsed and validated.

Only parsing lives here (pure, L1). Importing the graphs a config names is ``graphrun.graphs``' job.
Every error names the file, the key and what is wrong, so a broken config stops start-up with one line.

Why over ~400 lines (issue 24): one parser for one file format, read top to bottom in the file's order;
every section's checks share the section schema (``_check_object``) and the rule that an error names the
file and key. Splitting it by section (webhooks, auth, http, store) is possible; it was not done in issue
24 because issue 28 was changing it at the time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from graphrun.errors import ConfigError

KNOWN_KEYS = frozenset(
    {
        "graphs",
        "dependencies",
        "env",
        "store",
        "checkpointer",
        "auth",
        "priority",
        "encryption",
        "http",
        # Keys the LangGraph CLI uses for building images; accepted so that an existing file loads unchanged.
        "python_version",
        "node_version",
        "pip_config_file",
        "pip_installer",
        "dockerfile_lines",
        "base_image",
        "image_distro",
        "keep_pkg_tools",
        "ui",
        "ui_config",
        "webhooks",
        "api_version",
        "$schema",
    }
)
_GRAPH_ID = re.compile(r"^[A-Za-z0-9_.-]+$")

# Valid langgraph.json keys graphrun cannot act on: they stop start-up, saying so, rather than be
# silently ignored (generative-UI bundles, which the official server builds and serves at /ui; custom
# encryption, whose absence would leave data a user meant encrypted in the clear).
_REFUSED = {
    "encryption": "custom encryption at rest (langgraph_sdk.Encryption) is not applied by graphrun yet, and "
    "data would be stored unencrypted; remove the key, or encrypt at the storage layer (disk or database)",
    "ui": "generative-UI bundles are not built or served by graphrun; remove the key, or serve them yourself",
    "ui_config": "generative-UI bundles are not built or served by graphrun; remove the key",
}
# `http`, as the official server takes it: every key is applied (graphrun.api.app, graphrun.serve).
# disable_ui turns off the web console (/console); disable_a2a the A2A endpoints and agent cards.
_HTTP_SCHEMA: _SectionSchema = {
    "app": str,
    "cors": dict,
    "configurable_headers": dict,
    "logging_headers": dict,
    "enable_custom_route_auth": bool,
    "middleware_order": str,
    "mount_prefix": str,
    **{
        f"disable_{name}": bool
        for name in ("assistants", "threads", "runs", "store", "meta", "webhooks", "ui", "mcp", "a2a")
    },
}
# `webhooks`, as the official server takes it; every key is applied.
_WEBHOOKS_KEYS = frozenset({"headers", "allowed_fields", "url", "env_prefix"})
WEBHOOK_ENV_PREFIX = "LG_WEBHOOK_"  # the official default: templates may read only these variables
# A header value's templates: ${{ env.NAME }}, resolved from the environment at start-up.
HEADER_TEMPLATE = re.compile(r"\$\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
WEBHOOK_FIELDS = frozenset(
    {
        "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "metadata", "kwargs",
        "multitask_strategy", "status", "run_started_at", "run_ended_at", "webhook_sent_at", "values",
        "error",
    }
)  # fmt: skip

_NUMBER = (int, float)
# The sections graphrun validates key by key: key -> expected type, or a nested schema for an object.
# `store.index` is refused here: semantic search is not built, and an index silently not made would
# be worse than a clear error.
_SectionSchema = dict[str, Any]
_STORE_SCHEMA: _SectionSchema = {
    "ttl": {"refresh_on_read": bool, "default_ttl": _NUMBER, "sweep_interval_minutes": _NUMBER},
    "index": {"embed": str, "dims": int, "fields": list},
}
_URL_POLICY_SCHEMA: _SectionSchema = {
    "require_https": bool,
    "allowed_domains": list,
    "allowed_ports": list,
    "max_url_length": _NUMBER,
    "disable_loopback": bool,
    "disable_private_ips": bool,
}
_CHECKPOINTER_SCHEMA: _SectionSchema = {
    "ttl": {
        "strategy": str,
        "default_ttl": _NUMBER,
        "sweep_interval_minutes": _NUMBER,
        "sweep_limit": _NUMBER,
    },
    "serde": dict,
}
# `checkpointer.ttl` as the settings it stands for (langgraph.json wins over the environment).
_CHECKPOINTER_TTL_SETTINGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "default_ttl": ("thread_ttl_minutes", float),
    "strategy": ("thread_ttl_strategy", str),
    "sweep_interval_minutes": ("ttl_sweep_interval_s", lambda minutes: float(minutes) * 60.0),
    "sweep_limit": ("ttl_sweep_limit", int),
}


@dataclass(frozen=True)
class GraphSpec:
    """Where a graph comes from: a file (``./agent.py:graph``) or a module (``pkg.agent:graph``)."""

    graph_id: str
    path: Path | None
    module: str | None
    attr: str
    description: str | None = None

    @property
    def source(self) -> str:
        return f"{self.path or self.module}:{self.attr}"


@dataclass(frozen=True)
class LanggraphConfig:
    path: Path
    graphs: tuple[GraphSpec, ...]
    dependencies: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    store: Mapping[str, Any] | None = None
    checkpointer: Mapping[str, Any] | None = None
    auth: Mapping[str, Any] | None = None
    priority_path: str | None = None  # priority.path: a langgraph_sdk.Priority
    http: Mapping[str, Any] | None = None
    webhook_headers: Mapping[str, str] = field(default_factory=dict)  # may hold ${{ env.NAME }} templates
    webhook_fields: frozenset[str] | None = None  # None: every field
    webhook_url: Mapping[str, Any] | None = None  # webhooks.url: what a run's webhook URL may be
    # Keys that are valid but that graphrun does not act on yet; start-up says so in its log.
    not_applied: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def serde(self) -> Mapping[str, Any] | None:
        """``checkpointer.serde``: the savers' serializer (``savers.serializer``)."""
        found = (self.checkpointer or {}).get("serde")
        return found if isinstance(found, Mapping) else None

    def settings_overrides(self) -> dict[str, Any]:
        """The settings this file sets: ``checkpointer.ttl`` is the thread TTL (``default_ttl`` minutes,
        ``strategy``, ``sweep_interval_minutes``, ``sweep_limit``), as the official server reads it."""
        ttl = (self.checkpointer or {}).get("ttl") or {}
        return {
            name: convert(ttl[key])
            for key, (name, convert) in _CHECKPOINTER_TTL_SETTINGS.items()
            if ttl.get(key) is not None
        }


def load_config(path: Path) -> LanggraphConfig:
    """Read and validate a ``langgraph.json``; raise ``ConfigError`` naming file, key and problem."""
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(KNOWN_KEYS))})")
    for key, why in _REFUSED.items():
        if raw.get(key) is not None:
            raise ConfigError(f"{path}: {key!r} is not supported: {why}")
    webhooks = _optional_object(path, raw, "webhooks") or {}
    unknown_webhooks = sorted(set(webhooks) - _WEBHOOKS_KEYS)
    if unknown_webhooks:
        raise ConfigError(f"{path}: unknown key 'webhooks.{unknown_webhooks[0]}'")
    return LanggraphConfig(
        path=path,
        graphs=_parse_graphs(path, raw.get("graphs")),
        dependencies=_parse_dependencies(path, raw.get("dependencies", [])),
        env=_parse_env(path, raw.get("env", {})),
        store=_parse_section(path, raw, "store", _STORE_SCHEMA),
        checkpointer=_parse_section(path, raw, "checkpointer", _CHECKPOINTER_SCHEMA),
        auth=_parse_auth(path, raw),
        priority_path=_hook_path(path, raw, "priority"),
        http=_parse_http(path, raw),
        webhook_headers=_webhook_headers(path, webhooks),
        webhook_fields=_webhook_fields(path, webhooks),
        webhook_url=_webhook_url(path, webhooks),
        not_applied=(*(["auth.cache"] if (raw.get("auth") or {}).get("cache") is not None else []),),
    )


def _webhook_headers(path: Path, webhooks: Mapping[str, Any]) -> dict[str, str]:
    headers = webhooks.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(f"{path}: 'webhooks.headers' must be an object of header names to strings")
    prefix = webhooks.get("env_prefix", WEBHOOK_ENV_PREFIX)
    if not isinstance(prefix, str):
        raise ConfigError(f"{path}: 'webhooks.env_prefix' must be a string")
    for name, value in headers.items():
        for variable in HEADER_TEMPLATE.findall(value):
            if not variable.startswith(prefix):
                raise ConfigError(
                    f"{path}: 'webhooks.headers.{name}' reads env.{variable}, which does not start with "
                    f"the env_prefix {prefix!r}: templates may read only variables named so"
                )
        if "${{" in HEADER_TEMPLATE.sub("", value):
            raise ConfigError(
                f"{path}: 'webhooks.headers.{name}' has a template that is not '${{{{ env.NAME }}}}'"
            )
    return headers


def _webhook_url(path: Path, webhooks: Mapping[str, Any]) -> Mapping[str, Any] | None:
    policy = webhooks.get("url")
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise ConfigError(f"{path}: 'webhooks.url' must be an object")
    _check_object(path, "webhooks.url", policy, _URL_POLICY_SCHEMA)
    if not all(isinstance(d, str) and d for d in policy.get("allowed_domains") or []):
        raise ConfigError(f"{path}: 'webhooks.url.allowed_domains' must be a list of host names")
    if not all(isinstance(p, int) and 0 < p < 65536 for p in policy.get("allowed_ports") or []):
        raise ConfigError(f"{path}: 'webhooks.url.allowed_ports' must be a list of port numbers")
    return policy


def _webhook_fields(path: Path, webhooks: Mapping[str, Any]) -> frozenset[str] | None:
    fields = webhooks.get("allowed_fields")
    if fields is None:
        return None
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ConfigError(f"{path}: 'webhooks.allowed_fields' must be a list of field names")
    unknown = sorted(set(fields) - WEBHOOK_FIELDS)
    if unknown:
        raise ConfigError(
            f"{path}: 'webhooks.allowed_fields' has unknown field {unknown[0]!r} "
            f"(known: {', '.join(sorted(WEBHOOK_FIELDS))})"
        )
    return frozenset(fields)


def _parse_graphs(path: Path, graphs: Any) -> tuple[GraphSpec, ...]:
    if not isinstance(graphs, dict) or not graphs:
        raise ConfigError(
            f"{path}: key 'graphs' must be a non-empty object mapping graph ids to './file.py:attr'"
        )
    specs = []
    seen: set[str] = set()
    for graph_id, value in graphs.items():
        where = f"{path}: graphs.{graph_id}"
        if not _GRAPH_ID.fullmatch(graph_id):
            raise ConfigError(f"{where}: graph id may only contain letters, digits, '_', '.' and '-'")
        if graph_id.lower() in seen:
            raise ConfigError(f"{where}: duplicate graph id")
        seen.add(graph_id.lower())
        description = None
        if isinstance(value, dict):
            description = value.get("description")
            if description is not None and not isinstance(description, str):
                raise ConfigError(f"{where}: 'description' must be a string, got {description!r}")
            value = value.get("path")
        if not isinstance(value, str) or value.count(":") != 1:
            raise ConfigError(
                f"{where}: expected './path/to/file.py:attribute' or 'module:attribute', got {value!r}"
            )
        target, attr = value.split(":")
        if not attr.isidentifier():
            raise ConfigError(f"{where}: {attr!r} is not a Python attribute name")
        if target.endswith(".py") or "/" in target:
            specs.append(GraphSpec(graph_id, (path.parent / target).resolve(), None, attr, description))
        else:
            specs.append(GraphSpec(graph_id, None, target, attr, description))
    return tuple(specs)


def _parse_dependencies(path: Path, deps: Any) -> tuple[Path, ...]:
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ConfigError(f"{path}: key 'dependencies' must be a list of strings")
    # Local paths go on the import path; package names (e.g. "langchain_openai") are the installer's business.
    return tuple((path.parent / d).resolve() for d in deps if d.startswith((".", "/")))


def _parse_env(path: Path, env: Any) -> dict[str, str]:
    if isinstance(env, str):
        env_file = (path.parent / env).resolve()
        if not env_file.is_file():
            raise ConfigError(f"{path}: key 'env' names {env_file}, which does not exist")
        return {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    if isinstance(env, dict) and all(isinstance(v, str) for v in env.values()):
        return dict(env)
    raise ConfigError(f"{path}: key 'env' must be a path to a .env file or an object of strings")


def _optional_object(path: Path, raw: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{path}: key {key!r} must be an object")
    return value


# The keys of `auth` the official server takes. `disable_studio_auth` is accepted as is: graphrun has no
# LangSmith Studio login to disable. `cache` is valid but not applied (start-up says so).
_AUTH_KEYS = frozenset({"path", "disable_studio_auth", "allow_langsmith_api_keys", "openapi", "cache"})


def _hook_path(path: Path, raw: Mapping[str, Any], key: str) -> str | None:
    """``<key>.path`` of a section that names one object and nothing else (``priority``)."""
    section = _optional_object(path, raw, key)
    if section is None:
        return None
    unknown = sorted(set(section) - {"path"})
    if unknown:
        raise ConfigError(f"{path}: unknown key '{key}.{unknown[0]}' (known: path)")
    source = section.get("path")
    if not (isinstance(source, str) and ":" in source):
        raise ConfigError(f"{path}: key '{key}.path' must be './file.py:attribute', got {source!r}")
    return source


def _parse_auth(path: Path, raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    auth = _optional_object(path, raw, "auth")
    if auth is None:
        return None
    unknown = sorted(set(auth) - _AUTH_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key 'auth.{unknown[0]}' (known: {', '.join(sorted(_AUTH_KEYS))})")
    if "path" in auth and not (isinstance(auth["path"], str) and ":" in auth["path"]):
        raise ConfigError(f"{path}: key 'auth.path' must be './file.py:attribute', got {auth['path']!r}")
    if auth.get("allow_langsmith_api_keys"):
        raise ConfigError(
            f"{path}: 'auth.allow_langsmith_api_keys' needs LangSmith's API-key service, which a "
            "self-hosted graphrun has not; check keys in your @auth.authenticate handler instead"
        )
    if "openapi" in auth and not isinstance(auth["openapi"], dict):
        raise ConfigError(f"{path}: 'auth.openapi' must be an object (securitySchemes, security)")
    return auth


def _parse_section(
    path: Path, raw: Mapping[str, Any], key: str, schema: _SectionSchema
) -> Mapping[str, Any] | None:
    section = _optional_object(path, raw, key)
    if section is None:
        return None
    _check_object(path, key, section, schema)
    if key == "store" and section.get("index") is not None:
        _check_index(path, section["index"])
    if key == "checkpointer":
        _check_checkpointer(path, section)
    return section


def _parse_http(path: Path, raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    section = _optional_object(path, raw, "http")
    if section is None:
        return None
    _check_object(path, "http", section, _HTTP_SCHEMA)
    prefix = section.get("mount_prefix")
    if prefix and not prefix.startswith("/"):
        raise ConfigError(
            f"{path}: invalid http.mount_prefix {prefix!r}: it must start with '/' (e.g. '/api/v1')"
        )
    if section.get("middleware_order") not in (None, "auth_first", "middleware_first"):
        raise ConfigError(
            f"{path}: 'http.middleware_order' must be auth_first or middleware_first, "
            f"got {section['middleware_order']!r}"
        )
    return section


def _check_index(path: Path, index: Mapping[str, Any]) -> None:
    """``store.index``: ``embed`` (a provider string such as ``openai:text-embedding-3-small``, or the
    ``path.py:attr`` / ``module:attr`` of an embeddings object or function) and ``dims`` are needed."""
    if not index.get("embed"):
        raise ConfigError(f"{path}: 'store.index.embed' is required: a provider string or module:attr")
    if not isinstance(index.get("dims"), int) or index["dims"] <= 0:
        raise ConfigError(
            f"{path}: 'store.index.dims' is required: the embeddings' dimensions, a positive int"
        )
    fields = index.get("fields")
    if fields is not None and not all(isinstance(f, str) and f for f in fields):
        raise ConfigError(f"{path}: 'store.index.fields' must be a list of JSON paths such as \"text\"")


def _check_serde(path: Path, serde: Any) -> None:
    if not isinstance(serde, Mapping) or set(serde) - {"allowed_json_modules", "pickle_fallback"}:
        raise ConfigError(
            f"{path}: 'checkpointer.serde' must be an object with allowed_json_modules and pickle_fallback"
        )
    modules = serde.get("allowed_json_modules")
    if not (
        modules is None
        or modules is True
        or (
            isinstance(modules, list)
            and all(isinstance(m, list) and m and all(isinstance(p, str) for p in m) for m in modules)
        )
    ):
        raise ConfigError(
            f"{path}: 'checkpointer.serde.allowed_json_modules' must be true or a list of module paths "
            'such as ["my_agent", "state", "Plan"]'
        )
    if not isinstance(serde.get("pickle_fallback", True), bool):
        raise ConfigError(f"{path}: 'checkpointer.serde.pickle_fallback' must be a bool")


def _check_checkpointer(path: Path, section: Mapping[str, Any]) -> None:
    serde = section.get("serde")
    if serde is not None:
        _check_serde(path, serde)
    ttl = section.get("ttl") or {}
    if ttl.get("strategy") not in (None, "delete", "keep_latest"):
        raise ConfigError(
            f"{path}: 'checkpointer.ttl.strategy' must be delete or keep_latest, got {ttl['strategy']!r}"
        )
    for key in ("default_ttl", "sweep_interval_minutes", "sweep_limit"):
        if ttl.get(key) is not None and ttl[key] < 0:
            raise ConfigError(f"{path}: 'checkpointer.ttl.{key}' must be 0 or more, got {ttl[key]!r}")
    if ttl.get("sweep_interval_minutes") == 0 or ttl.get("sweep_limit") == 0:
        raise ConfigError(
            f"{path}: 'checkpointer.ttl' sweep_interval_minutes and sweep_limit must be more than 0"
        )


def _check_object(path: Path, where: str, value: Mapping[str, Any], schema: _SectionSchema) -> None:
    for name, item in value.items():
        if name not in schema:
            raise ConfigError(f"{path}: unknown key '{where}.{name}' (known: {', '.join(schema)})")
        expected = schema[name]
        if item is None:
            continue
        if isinstance(expected, dict):
            if not isinstance(item, dict):
                raise ConfigError(f"{path}: '{where}.{name}' must be an object")
            _check_object(path, f"{where}.{name}", item, expected)
        elif (isinstance(item, bool) and expected is not bool) or not isinstance(item, expected):
            kind = "a number" if expected is _NUMBER else f"a {expected.__name__}"
            raise ConfigError(f"{path}: '{where}.{name}' must be {kind}, got {item!r}")
