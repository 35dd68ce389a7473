"""``Settings``: defaults, ``GRAPHRUN_*`` parsing, overrides, validation and the ``--help`` table.

Every test passes an explicit ``environ`` mapping; the process environment is never read or written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from graphrun.errors import ConfigError
from graphrun.settings import ENV_PREFIX, Settings, describe, env_name, redacted


def test_defaults() -> None:
    settings = Settings.from_env(environ={})

    assert settings == Settings()
    assert settings.config == Path("langgraph.json")
    assert settings.data_dir == Path(".graphrun")
    assert (settings.host, settings.port) == ("127.0.0.1", 2024)
    assert (settings.log_level, settings.log_format) == ("INFO", "json")
    assert settings.worker_concurrency == 32
    assert (settings.lease_s, settings.heartbeat_interval_s) == (30.0, 10.0)
    assert settings.max_attempts == 3
    assert settings.default_durability == "sync"
    assert settings.stream_buffer_ttl_s == 120.0
    assert settings.cors_origins_for(auth_on=False) == ["*"]
    assert settings.cors_origins_for(auth_on=True) == []  # no wildcard by default once auth is on


@pytest.mark.parametrize(
    ("name", "raw", "field", "expected"),
    [
        ("GRAPHRUN_CONFIG", "deploy/langgraph.json", "config", Path("deploy/langgraph.json")),
        ("GRAPHRUN_DATA_DIR", "/var/lib/graphrun", "data_dir", Path("/var/lib/graphrun")),
        ("GRAPHRUN_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("GRAPHRUN_PORT", "8123", "port", 8123),
        ("GRAPHRUN_PORT", " 8123 ", "port", 8123),
        ("GRAPHRUN_LOG_FORMAT", "console", "log_format", "console"),
        ("GRAPHRUN_WORKER_CONCURRENCY", "4", "worker_concurrency", 4),
        ("GRAPHRUN_LEASE_S", "12.5", "lease_s", 12.5),
        ("GRAPHRUN_HEARTBEAT_INTERVAL_S", "2", "heartbeat_interval_s", 2.0),
        ("GRAPHRUN_DEFAULT_DURABILITY", "exit", "default_durability", "exit"),
        ("GRAPHRUN_STREAM_BUFFER_TTL_S", "0.5", "stream_buffer_ttl_s", 0.5),
    ],
)
def test_env_is_parsed_to_the_field_type(name: str, raw: str, field: str, expected: object) -> None:
    settings = Settings.from_env(environ={name: raw})

    value = getattr(settings, field)
    assert value == expected
    assert type(value) is type(expected) or isinstance(value, Path)


def test_only_prefixed_variables_are_read() -> None:
    settings = Settings.from_env(environ={"PORT": "1", "LEASE_S": "1", "graphrun_port": "1"})

    assert settings == Settings()


def test_cors_origins_split_on_commas() -> None:
    settings = Settings.from_env(
        environ={"GRAPHRUN_CORS_ALLOW_ORIGINS": " https://a.example, ,https://b.example "}
    )

    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_overrides_win_over_env() -> None:
    environ = {"GRAPHRUN_PORT": "8000", "GRAPHRUN_HOST": "0.0.0.0"}

    settings = Settings.from_env(environ=environ, port=9000, host=None)

    assert settings.port == 9000
    assert settings.host == "0.0.0.0"  # a None override (an unset CLI flag) leaves the env value


def test_overrides_are_validated() -> None:
    with pytest.raises(ConfigError, match="GRAPHRUN_WORKER_CONCURRENCY"):
        Settings.from_env(environ={}, worker_concurrency=0)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        pytest.param({"GRAPHRUN_PORT": "http"}, "GRAPHRUN_PORT", id="bad-int"),
        pytest.param({"GRAPHRUN_PORT": "20.24"}, "GRAPHRUN_PORT", id="float-for-int"),
        pytest.param({"GRAPHRUN_LEASE_S": "30s"}, "GRAPHRUN_LEASE_S", id="bad-float"),
        pytest.param({"GRAPHRUN_LOG_FORMAT": "xml"}, "GRAPHRUN_LOG_FORMAT", id="bad-log-format"),
        pytest.param({"GRAPHRUN_LOG_LEVEL": "LOUD"}, "GRAPHRUN_LOG_LEVEL", id="bad-log-level"),
        pytest.param(
            {"GRAPHRUN_DEFAULT_DURABILITY": "never"}, "GRAPHRUN_DEFAULT_DURABILITY", id="bad-durability"
        ),
        pytest.param(
            {"GRAPHRUN_HEARTBEAT_INTERVAL_S": "30", "GRAPHRUN_LEASE_S": "30"},
            "GRAPHRUN_HEARTBEAT_INTERVAL_S",
            id="heartbeat-equals-lease",
        ),
        pytest.param({"GRAPHRUN_LEASE_S": "5"}, "GRAPHRUN_LEASE_S", id="lease-below-default-heartbeat"),
        pytest.param({"GRAPHRUN_WORKER_CONCURRENCY": "0"}, "GRAPHRUN_WORKER_CONCURRENCY", id="concurrency-0"),
        pytest.param({"GRAPHRUN_MAX_ATTEMPTS": "0"}, "GRAPHRUN_MAX_ATTEMPTS", id="attempts-0"),
        pytest.param(
            {"GRAPHRUN_DATABASE_DIRECT_URI": "postgresql://db/x"},
            "GRAPHRUN_DATABASE_DIRECT_URI",
            id="direct-uri-without-database-uri",
        ),
    ],
)
def test_invalid_values_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ=environ)

    assert variable in info.value.message


def test_describe_lists_every_field() -> None:
    rows = describe()
    fields = dataclasses.fields(Settings)

    assert [name for name, *_ in rows] == [env_name(f) for f in fields]
    # The names the official server, OpenTelemetry, LangSmith and Langfuse use keep their names.
    assert {env_name(f) for f in fields if not env_name(f).startswith(ENV_PREFIX)} == {
        "DATABASE_URI",
        "REDIS_URI",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SERVICE_NAME",
        "LANGSMITH_TRACING",
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_HOST",
        "LANGGRAPH_API_KEY",  # what the SDK sends; graphrun's client commands send it too
    }
    for (name, default, unit, help_text), f in zip(rows, fields, strict=True):
        assert default == str(f.default), name
        assert unit, name
        assert help_text, name
    by_name = {name: (default, unit) for name, default, unit, _ in rows}
    assert by_name["GRAPHRUN_LEASE_S"] == ("30.0", "s")
    assert by_name["GRAPHRUN_CONFIG"] == ("langgraph.json", "path")


OTHER_STRING_VALUES = {
    "alert_slack_webhook_url": "https://hooks.example/slack",
    "alert_feishu_webhook_url": "https://hooks.example/feishu",
    "alert_feishu_secret": "feishu-secret",
    "alert_dingtalk_webhook_url": "https://hooks.example/dingtalk",
    "alert_dingtalk_secret": "dingtalk-secret",
    "error_detail": "safe",
    "thread_ttl_strategy": "keep_latest",
    "host": "0.0.0.0",
    "log_level": "DEBUG",
    "log_format": "console",
    "cors_allow_origins": "https://a.example",
    "auth_open_paths": "/ok,/ready,/metrics",
    "api_keys": "alice=alice-key-0123456789abcdef",
    "api_keys_file": "/etc/graphrun/keys.txt",
    "rate_limit": "100/minute",
    "default_durability": "async",
    "database_uri": "postgresql://u@db/graphrun",
    "database_direct_uri": "postgresql://db:5432/graphrun",
    "redis_uri": "redis://cache:6379/0",
    "checkpointer": "memory",
    "checkpointer_uri": "mongodb://m",
    "store": "memory",
    "store_uri": "redis://s",
    "redact_keys": "tenant",
    "redact_pii": "email",
    "redact_patterns": '["ACME-[0-9]+"]',
    "node_io": "summary",
    "otel_exporter_otlp_endpoint": "http://collector:4318",
    "otel_exporter_otlp_traces_endpoint": "http://collector:4318/v1/traces",
    "otel_traces_exporter": "otlp",
    "otel_service_name": "agents",
    "langsmith_tracing": "true",
    "langfuse_public_key": "pk-lf-1",
    "langfuse_host": "http://langfuse:3000",
    "client_api_key": "k-client-0123456789",
}


def test_every_field_can_be_set_from_the_env() -> None:
    # describe() promises an env name per field; each must actually be read by from_env.
    environ: dict[str, str] = {}
    expected: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, bool):
            value: Any = not default
        elif isinstance(default, Path):
            value = Path("elsewhere")
        elif isinstance(default, int):
            value = default + 1
        elif isinstance(default, float):
            value = default + 1.0
        else:
            value = OTHER_STRING_VALUES[f.name]
        environ[env_name(f)] = str(value)
        expected[f.name] = value

    settings = Settings.from_env(environ=environ)

    assert dataclasses.asdict(settings) == expected


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/graphrun", "postgresql://app:***@db:5432/graphrun"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql://app@db/graphrun", "postgresql://app@db/graphrun"),
        ("host=db user=app password=s3cret dbname=graphrun", "user=app dbname=graphrun host=db"),
    ],
    ids=["uri", "uri-password-only", "no-password", "conninfo"],
)
def test_redacted_hides_the_password(uri: str, shown: str) -> None:
    assert redacted(uri) == shown


def test_an_open_docs_page_opens_the_document_it_shows() -> None:
    assert Settings(auth_open_paths="/ok,/docs").open_paths == ["/ok", "/docs", "/openapi.json"]
    assert Settings(auth_open_paths="/redoc").open_paths == ["/redoc", "/openapi.json"]
    assert Settings(auth_open_paths="/ok,/ready").open_paths == ["/ok", "/ready"]


@pytest.mark.parametrize(
    ("environ", "direct", "pooled"),
    [
        pytest.param({"DATABASE_URI": "postgresql://db/x"}, "postgresql://db/x", False, id="no-pooler"),
        pytest.param(
            {"DATABASE_URI": "postgresql://bouncer/x", "GRAPHRUN_DATABASE_DIRECT_URI": "postgresql://db/x"},
            "postgresql://db/x",
            True,
            id="pgbouncer",
        ),
        pytest.param(
            {"DATABASE_URI": "postgresql://db/x", "GRAPHRUN_DATABASE_DIRECT_URI": "postgresql://db/x"},
            "postgresql://db/x",
            False,
            id="the-same-uri",
        ),
    ],
)
def test_a_direct_uri_marks_database_uri_as_a_pooler(
    environ: dict[str, str], direct: str, pooled: bool
) -> None:
    settings = Settings.from_env(environ=environ)

    assert (settings.direct_database_uri, settings.database_pooled) == (direct, pooled)
