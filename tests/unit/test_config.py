"""``load_config``: every form of ``langgraph.json`` that must load, and every mistake that must not.

Each error must name the file, the key and the problem, so that a broken config stops start-up with one
line a user can act on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphrun.config import GraphSpec, load_config
from graphrun.errors import ConfigError

VALID_GRAPH = "./agent.py:graph"


def write_config(directory: Path, raw: object) -> Path:
    path = directory / "langgraph.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    """The message of the ``ConfigError`` that loading ``path`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.message


def test_every_key_form_loads(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "$schema": "https://langgra.ph/schema.json",
            "python_version": "3.11",
            "graphs": {
                "file_graph": "./agents/agent.py:graph",
                "module_graph": "my_pkg.agent:make_graph",
                "described": {"path": "./agents/agent.py:graph", "description": "Answers questions"},
            },
            "dependencies": [".", "./lib", "langchain_openai"],
            "env": {"OPENAI_API_KEY": "sk-test", "EMPTY": ""},
            "store": {"ttl": {"default_ttl": 60}},
            "checkpointer": {"ttl": {"strategy": "delete"}},
            "auth": {"path": "./auth.py:auth"},
            "http": {"cors": {"allow_origins": ["*"]}},
        },
    )

    config = load_config(path)

    assert config.path == path.resolve()
    assert config.base_dir == tmp_path.resolve()
    agent_file = (tmp_path / "agents" / "agent.py").resolve()
    assert config.graphs == (
        GraphSpec("file_graph", agent_file, None, "graph"),
        GraphSpec("module_graph", None, "my_pkg.agent", "make_graph"),
        GraphSpec("described", agent_file, None, "graph", "Answers questions"),
    )
    assert config.graphs[0].source == f"{agent_file}:graph"
    assert config.graphs[1].source == "my_pkg.agent:make_graph"
    # Package names are the installer's business; only local paths go on the import path.
    assert config.dependencies == (tmp_path.resolve(), (tmp_path / "lib").resolve())
    assert dict(config.env) == {"OPENAI_API_KEY": "sk-test", "EMPTY": ""}
    assert config.store == {"ttl": {"default_ttl": 60}}
    assert config.checkpointer == {"ttl": {"strategy": "delete"}}
    assert config.auth == {"path": "./auth.py:auth"}
    assert config.http == {"cors": {"allow_origins": ["*"]}}


def test_minimal_config_has_empty_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"graphs": {"agent": VALID_GRAPH}}))

    assert config.dependencies == ()
    assert dict(config.env) == {}
    assert (config.store, config.checkpointer, config.auth, config.http) == (None, None, None, None)


def test_env_as_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# a comment\nOPENAI_API_KEY=sk-file\nMODEL='gpt-4o'\n", encoding="utf-8")
    path = write_config(tmp_path, {"graphs": {"agent": VALID_GRAPH}, "env": ".env"})

    assert dict(load_config(path).env) == {"OPENAI_API_KEY": "sk-file", "MODEL": "gpt-4o"}


def test_relative_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, {"graphs": {"agent": VALID_GRAPH}})
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("langgraph.json"))

    assert config.path == (tmp_path / "langgraph.json").resolve()
    assert config.graphs[0].path == (tmp_path / "agent.py").resolve()


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "langgraph.json"

    message = config_error(path)

    assert str(path.resolve()) in message
    assert "not found" in message


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    path.write_text('{"graphs": {"agent": "./agent.py:graph",}}', encoding="utf-8")

    message = config_error(path)

    assert message.startswith(f"{path.resolve()}: invalid JSON")


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "langgraph.json"
    path.write_bytes(b'{"graphs": "\xff\xfe"}')

    assert config_error(path).startswith(f"{path.resolve()}: invalid JSON")


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        pytest.param(["./agent.py:graph"], ("top level must be a JSON object",), id="top-level-list"),
        pytest.param("agent", ("top level must be a JSON object",), id="top-level-string"),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "grpahs": {}}, ("unknown key 'grpahs'",), id="unknown-key"
        ),
        pytest.param({}, ("'graphs'", "non-empty object"), id="graphs-missing"),
        pytest.param({"graphs": {}}, ("'graphs'", "non-empty object"), id="graphs-empty"),
        pytest.param({"graphs": [VALID_GRAPH]}, ("'graphs'", "non-empty object"), id="graphs-list"),
        pytest.param({"graphs": VALID_GRAPH}, ("'graphs'", "non-empty object"), id="graphs-string"),
        pytest.param(
            {"graphs": {"agent": "./agent.py"}},
            ("graphs.agent", "expected", "'./agent.py'"),
            id="spec-no-colon",
        ),
        pytest.param(
            {"graphs": {"agent": "./agent.py:graph:extra"}},
            ("graphs.agent", "expected", "'./agent.py:graph:extra'"),
            id="spec-two-colons",
        ),
        pytest.param({"graphs": {"agent": 42}}, ("graphs.agent", "expected", "42"), id="spec-not-a-string"),
        pytest.param(
            {"graphs": {"agent": {"description": "no path"}}},
            ("graphs.agent", "expected", "None"),
            id="spec-dict-without-path",
        ),
        pytest.param(
            {"graphs": {"agent": {"path": VALID_GRAPH, "description": 42}}},
            ("graphs.agent", "description"),
            id="description-not-a-string",
        ),
        pytest.param(
            {"graphs": {"agent": "./agent.py:1graph"}},
            ("graphs.agent", "'1graph' is not a Python attribute name"),
            id="attr-not-identifier",
        ),
        pytest.param(
            {"graphs": {"agent": "./agent.py:"}},
            ("graphs.agent", "'' is not a Python attribute name"),
            id="attr-empty",
        ),
        pytest.param(
            {"graphs": {"my agent": VALID_GRAPH}},
            ("graphs.my agent", "graph id may only"),
            id="id-with-space",
        ),
        pytest.param(
            {"graphs": {"a/b": VALID_GRAPH}}, ("graphs.a/b", "graph id may only"), id="id-with-slash"
        ),
        pytest.param({"graphs": {"": VALID_GRAPH}}, ("graphs.", "graph id may only"), id="id-empty"),
        pytest.param(
            {"graphs": {"agent\n": VALID_GRAPH}},
            ("graphs.agent\n", "graph id may only"),
            id="id-trailing-newline",
        ),
        pytest.param(
            {"graphs": {"Agent": VALID_GRAPH, "agent": "./other.py:graph"}},
            ("graphs.agent", "duplicate graph id"),
            id="duplicate-id-case-insensitive",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "dependencies": "."},
            ("'dependencies'", "list of strings"),
            id="dependencies-string",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "dependencies": [".", 3]},
            ("'dependencies'", "list of strings"),
            id="dependencies-non-string-item",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "env": {"PORT": 8000}},
            ("'env'", "object of strings"),
            id="env-non-string-value",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "env": ["A=1"]}, ("'env'", "object of strings"), id="env-list"
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "env": ".env.missing"},
            ("'env'", ".env.missing", "does not exist"),
            id="env-file-missing",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "auth": {"path": "./auth.py"}},
            ("'auth.path'", "'./auth.py'"),
            id="auth-path-no-attr",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "auth": {"path": 7}},
            ("'auth.path'", "7"),
            id="auth-path-not-str",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "auth": "./auth.py:auth"},
            ("'auth'", "must be an object"),
            id="auth-not-object",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": ["ttl"]},
            ("'store'", "must be an object"),
            id="store-not-object",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"tll": {}}},
            ("unknown key 'store.tll'",),
            id="store-unknown-key",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"ttl": {"default_tll": 60}}},
            ("unknown key 'store.ttl.default_tll'",),
            id="store-ttl-unknown-key",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"ttl": 60}},
            ("'store.ttl' must be an object",),
            id="store-ttl-not-object",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"ttl": {"default_ttl": "x"}}},
            ("'store.ttl.default_ttl' must be a number", "'x'"),
            id="store-ttl-bad-type",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"ttl": {"refresh_on_read": 1}}},
            ("'store.ttl.refresh_on_read' must be a bool",),
            id="store-ttl-bool",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"index": {"dims": 1536}}},
            ("'store.index.embed' is required",),
            id="store-index-no-embed",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "store": {"index": {"embed": "openai:x", "dims": 0}}},
            ("'store.index.dims' is required",),
            id="store-index-bad-dims",
        ),
        pytest.param(
            {
                "graphs": {"agent": VALID_GRAPH},
                "store": {"index": {"embed": "openai:x", "dims": 8, "fields": [1]}},
            },
            ("'store.index.fields' must be a list",),
            id="store-index-bad-fields",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "checkpointer": {"ttl": {"strategy": 5}}},
            ("'checkpointer.ttl.strategy' must be a str",),
            id="checkpointer-ttl-bad-type",
        ),
        pytest.param(
            {"graphs": {"agent": VALID_GRAPH}, "checkpointer": {"backend": "x"}},
            ("unknown key 'checkpointer.backend'",),
            id="checkpointer-unknown-key",
        ),
    ],
)
def test_invalid_config(tmp_path: Path, raw: object, fragments: tuple[str, ...]) -> None:
    path = write_config(tmp_path, raw)

    message = config_error(path)

    assert message.startswith(f"{path.resolve()}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_keys_graphrun_does_not_act_on_are_named(tmp_path: Path) -> None:
    raw = {
        "graphs": {"agent": VALID_GRAPH},
        "checkpointer": {"ttl": {"strategy": "delete"}},
        "http": {"cors": {"allow_origins": ["https://a.example"]}, "app": "./app.py:app"},
        "auth": {"path": "./auth.py:auth", "cache": {"ttl_seconds": 60}},
    }
    path = write_config(tmp_path, raw)

    assert load_config(path).not_applied == ("auth.cache",)  # checkpointer.ttl and http are applied


def test_checkpointer_ttl_sets_the_thread_ttl_settings(tmp_path: Path) -> None:
    raw = {
        "graphs": {"agent": VALID_GRAPH},
        "checkpointer": {
            "ttl": {
                "strategy": "keep_latest",
                "default_ttl": 60,
                "sweep_interval_minutes": 2,
                "sweep_limit": 50,
            }
        },
    }

    assert load_config(write_config(tmp_path, raw)).settings_overrides() == {
        "thread_ttl_minutes": 60.0,
        "thread_ttl_strategy": "keep_latest",
        "ttl_sweep_interval_s": 120.0,
        "ttl_sweep_limit": 50,
    }


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"checkpointer": {"ttl": {"strategy": "archive"}}}, "must be delete or keep_latest"),
        ({"checkpointer": {"ttl": {"default_ttl": -1}}}, "must be 0 or more"),
        ({"checkpointer": {"ttl": {"sweep_interval_minutes": 0}}}, "must be more than 0"),
        ({"http": {"mount_prefix": "api"}}, "it must start with '/'"),
        ({"http": {"disable_threads": "yes"}}, "'http.disable_threads' must be a bool"),
        ({"http": {"middleware_order": "random"}}, "must be auth_first or middleware_first"),
        ({"http": {"routes": []}}, "unknown key 'http.routes'"),
        ({"ui": {"agent": "./ui.tsx"}}, "'ui' is not supported: generative-UI bundles"),
        ({"ui_config": {"shared": []}}, "'ui_config' is not supported"),
        ({"encryption": {"path": "./enc.py:encryption"}}, "'encryption' is not supported: custom encryption"),
    ],
)
def test_keys_graphrun_cannot_apply_stop_start_up(
    tmp_path: Path, section: dict[str, Any], fragment: str
) -> None:
    path = write_config(tmp_path, {"graphs": {"agent": VALID_GRAPH}, **section})

    assert fragment in config_error(path)


def test_webhook_headers_and_fields_are_applied_the_url_policy_is_named(tmp_path: Path) -> None:
    raw = {
        "graphs": {"agent": VALID_GRAPH},
        "webhooks": {
            "headers": {"Authorization": "Bearer x"},
            "allowed_fields": ["run_id", "status"],
            "url": {"require_https": True},
        },
    }
    config = load_config(write_config(tmp_path, raw))

    assert config.webhook_headers == {"Authorization": "Bearer x"}
    assert config.webhook_fields == frozenset({"run_id", "status"})
    assert config.webhook_url == {"require_https": True}
    assert config.not_applied == ()


@pytest.mark.parametrize(
    ("webhooks", "fragment"),
    [
        ({"headers": {"X": 1}}, "'webhooks.headers' must be an object of header names to strings"),
        ({"headers": {"X": "${{ env.HOME }}"}}, "does not start with the env_prefix 'LG_WEBHOOK_'"),
        ({"headers": {"X": "${{ secrets.X }}"}}, "has a template that is not"),
        ({"url": {"allowed_ports": [0]}}, "must be a list of port numbers"),
        ({"url": {"require_https": "yes"}}, "'webhooks.url.require_https' must be a bool"),
        ({"allowed_fields": ["run_id", "secret"]}, "unknown field 'secret'"),
        ({"allowed_fields": "run_id"}, "must be a list of field names"),
        ({"retries": 3}, "unknown key 'webhooks.retries'"),
    ],
    ids=[
        "header-not-string",
        "template-outside-prefix",
        "not-an-env-template",
        "bad-port",
        "https-not-bool",
        "unknown-field",
        "fields-not-list",
        "unknown-key",
    ],
)
def test_bad_webhooks_section_is_refused(tmp_path: Path, webhooks: dict[str, Any], fragment: str) -> None:
    path = write_config(tmp_path, {"graphs": {"agent": VALID_GRAPH}, "webhooks": webhooks})

    assert fragment in config_error(path)
