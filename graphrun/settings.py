"""Server settings: the only module that reads ``os.environ``.

Every setting has an environment name (prefix ``GRAPHRUN_``), a default and a unit, declared once as a
field of ``Settings`` below. ``graphrun --help`` prints them (``describe()``); a test keeps the README's
configuration table equal to them.

Why over ~400 lines (issue 24): this is the one table of every setting by design. Most of its length is
the field declarations of ``Settings`` (default, unit, help each), and the rest is what reads and checks
them; split, settings would be declared in two places, which is what this module exists to prevent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import limits
import psycopg.conninfo

from graphrun import redact
from graphrun.errors import ConfigError

ENV_PREFIX = "GRAPHRUN_"


def _setting(default: Any, unit: str, help: str, env: str | None = None) -> Any:
    """A field of ``Settings``; ``env`` names its variable when it is not ``GRAPHRUN_<NAME>`` (the
    official server's ``DATABASE_URI`` and ``REDIS_URI``)."""
    return field(default=default, metadata={"unit": unit, "help": help, "env": env})


def env_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata["env"] or ENV_PREFIX + f.name.upper())


@dataclass(frozen=True)
class Settings:
    """Every tunable of a graphrun process. Build with ``Settings.from_env()``."""

    config: Path = _setting(Path("langgraph.json"), "path", "langgraph.json to load")
    data_dir: Path = _setting(Path(".graphrun"), "path", "where embedded mode keeps its SQLite files")
    host: str = _setting("127.0.0.1", "address", "address the HTTP server binds")
    port: int = _setting(2024, "port", "port the HTTP server listens on")
    log_level: str = _setting("INFO", "level", "DEBUG, INFO, WARNING or ERROR")
    log_format: str = _setting("json", "name", "json (one event per line) or console")
    cors_allow_origins: str = _setting(
        "",
        "list",
        "comma-separated origins allowed by CORS (http.cors in langgraph.json wins); empty: every "
        "origin without auth, none with it",
    )
    auth_open_paths: str = _setting(
        "/ok,/ready",
        "list",
        "paths answered without authentication (comma-separated); add /metrics or /docs to open them "
        "(/docs and /redoc open /openapi.json too)",
    )
    max_streams_per_owner: int = _setting(
        100,
        "streams",
        "open streams and waits (join, wait, MCP calls) one caller may hold on an API process; 0: no bound",
    )
    api_keys: str = _setting(
        "", "list", "owner=key entries (comma-separated) a request must carry one of; empty: no keys"
    )
    api_keys_file: str = _setting(
        "", "path", "a file of '<owner> sha256:<hex>' lines, keys a request may carry; empty: none"
    )
    rate_limit: str = _setting(
        "",
        "rate",
        "requests a client (its API key, else its address) may make, e.g. 100/minute (shared through "
        "Redis); empty: none",
    )
    max_body_bytes: int = _setting(
        10 * 1024 * 1024, "bytes", "a request body larger than this is refused with 413; 0: no limit"
    )
    worker_concurrency: int = _setting(32, "runs", "runs one worker executes at once")
    poll_interval_s: float = _setting(1.0, "s", "how often an idle worker looks for runs it was not told of")
    lease_s: float = _setting(30.0, "s", "how long a claimed run stays owned without a heartbeat")
    heartbeat_interval_s: float = _setting(10.0, "s", "how often a worker renews its leases")
    max_attempts: int = _setting(3, "attempts", "attempts before a run that keeps crashing ends in error")
    run_timeout_s: float = _setting(3600.0, "s", "a run still executing after this ends with status timeout")
    shutdown_grace_s: float = _setting(
        20.0, "s", "on SIGTERM, how long running runs may go on before release"
    )
    default_durability: str = _setting("sync", "mode", "checkpoint durability of runs that do not choose one")
    stream_buffer_ttl_s: float = _setting(120.0, "s", "how long a finished run's events stay joinable")
    sse_keepalive_s: float = _setting(5.0, "s", "interval of SSE heartbeat comments on idle streams")
    wait_timeout_s: float = _setting(3600.0, "s", "longest a /wait or /join request holds the connection")
    wait_keepalive_s: float = _setting(
        5.0,
        "s",
        "a /wait or /join still waiting is answered 200 and padded with a newline this often",
    )
    webhook_timeout_s: float = _setting(10.0, "s", "timeout of one webhook POST")
    webhook_retries: int = _setting(3, "retries", "retries of a webhook after a connection error or a 5xx")
    webhook_allow_local: bool = _setting(
        False,
        "bool",
        "local development: webhooks may reach loopback and private addresses, whatever webhooks.url says",
    )
    # Production mode: PostgreSQL and Redis, by the names the official server uses.
    database_uri: str = _setting(
        "",
        "uri",
        "PostgreSQL for the control store, checkpointer and store; empty: embedded SQLite",
        "DATABASE_URI",
    )
    database_direct_uri: str = _setting(
        "",
        "uri",
        "PostgreSQL itself when DATABASE_URI is a pooler in transaction mode (PgBouncer): migrations, "
        "the savers' setup and LISTEN go here, and DATABASE_URI gets no prepared statements; empty: none",
    )
    redis_uri: str = _setting(
        "", "uri", "Redis for run events and cancel signals across processes; empty: in process", "REDIS_URI"
    )
    checkpointer: str = _setting(
        "",
        "kind",
        "postgres, sqlite, memory, redis, mongodb or module:attr; empty: postgres with a DATABASE_URI",
    )
    checkpointer_uri: str = _setting(
        "", "uri", "where the checkpointer connects when it is not DATABASE_URI (redis://, mongodb://)"
    )
    store: str = _setting(
        "",
        "kind",
        "long-term store: postgres, sqlite, memory, redis, mongodb or module:attr; empty: as checkpointer",
    )
    store_uri: str = _setting("", "uri", "where the store connects when it is not DATABASE_URI")
    pg_pool_min_size: int = _setting(1, "connections", "connections each PostgreSQL pool keeps open")
    pg_pool_max_size: int = _setting(
        10, "connections", "most connections each PostgreSQL pool opens (a process has three)"
    )
    pg_pool_max_idle_s: float = _setting(
        300.0, "s", "an idle pooled connection above the minimum is closed after this"
    )
    pg_pool_max_lifetime_s: float = _setting(3600.0, "s", "a pooled connection is replaced after this")
    thread_ttl_minutes: float = _setting(
        0.0, "min", "threads not updated for this long are deleted; 0: never"
    )
    thread_ttl_strategy: str = _setting(
        "delete",
        "mode",
        "what a thread past its TTL gets when it has no strategy of its own: delete or keep_latest",
    )
    ttl_sweep_interval_s: float = _setting(60.0, "s", "how often expired threads are looked for")
    ttl_sweep_limit: int = _setting(100, "threads", "expired threads one sweep acts on at most")
    cron_interval_s: float = _setting(
        5.0, "s", "how often a worker looks for crons whose tick has come; 0: this worker fires none"
    )
    stream_max_events: int = _setting(
        10_000, "events", "events kept per run stream in Redis (older ones are trimmed)"
    )
    # Redaction (graphrun.redact): applied to logs, traces, recorded node I/O and client-visible errors.
    redact_keys: str = _setting(
        "", "list", "extra keys whose values are masked wherever they appear (comma-separated)"
    )
    redact_pii: str = _setting(
        "email,phone,id_number", "list", "personal data masked: email, phone, id_number; empty: none"
    )
    redact_patterns: str = _setting("", "json", "extra regexes whose matches are masked (a JSON list)")
    # Observability (docs/observability.md).
    node_io: str = _setting(
        "off", "mode", "record node inputs/outputs in logs and spans: off, summary or full"
    )
    node_io_max_chars: int = _setting(2000, "chars", "longest recorded node input or output (full mode)")
    metrics_port: int = _setting(
        0, "port", "graphrun worker serves /metrics and /ok (alive) on this port; 0: none"
    )
    otel_exporter_otlp_endpoint: str = _setting(
        "",
        "uri",
        "OTLP/HTTP endpoint for traces; empty: traces are not exported",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    otel_exporter_otlp_traces_endpoint: str = _setting(
        "",
        "uri",
        "OTLP/HTTP endpoint for traces only (wins over the general one)",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    )
    otel_traces_exporter: str = _setting(
        "", "name", "otlp, console or none; empty: otlp when an endpoint is set", "OTEL_TRACES_EXPORTER"
    )
    otel_service_name: str = _setting(
        "graphrun", "name", "service.name of exported spans", "OTEL_SERVICE_NAME"
    )
    langsmith_tracing: str = _setting(
        "", "bool", "true: every run is traced to LangSmith (with LANGSMITH_API_KEY)", "LANGSMITH_TRACING"
    )
    langfuse_public_key: str = _setting(
        "", "key", "with LANGFUSE_SECRET_KEY: every run is traced to Langfuse", "LANGFUSE_PUBLIC_KEY"
    )
    langfuse_host: str = _setting("", "uri", "Langfuse server (default: Langfuse cloud)", "LANGFUSE_HOST")
    run_retention_days: float = _setting(
        0.0, "days", "finished runs older than this are deleted (their threads stay); 0: kept"
    )
    # graphrun alert-relay (docs/observability.md, "Alerts").
    alert_relay_port: int = _setting(9095, "port", "port graphrun alert-relay listens on")
    alert_slack_webhook_url: str = _setting("", "uri", "Slack incoming webhook the relay posts alerts to")
    alert_feishu_webhook_url: str = _setting("", "uri", "Feishu (Lark) custom bot webhook for alerts")
    alert_feishu_secret: str = _setting("", "secret", "the Feishu bot's signing secret; empty: unsigned")
    alert_dingtalk_webhook_url: str = _setting(
        "", "uri", "DingTalk robot webhook (with its access_token) for alerts"
    )
    alert_dingtalk_secret: str = _setting(
        "", "secret", "the DingTalk robot's signing secret; empty: unsigned"
    )
    alert_retries: int = _setting(3, "retries", "retries of an alert after a 5xx, 429 or connection error")
    alert_timeout_s: float = _setting(10.0, "s", "timeout of one post to a chat system")
    # Error handling (docs/resilience.md).
    breaker_failures: int = _setting(
        5, "failures", "a model's circuit opens after this many retryable failures in the window; 0: off"
    )
    breaker_window_s: float = _setting(60.0, "s", "the window in which a circuit's failures are counted")
    breaker_reset_s: float = _setting(30.0, "s", "how long an open circuit refuses calls before a probe")
    # The client side: what `graphrun stats` (every command that talks to a server) sends.
    client_api_key: str = _setting(
        "",
        "key",
        "the API key graphrun's client commands (graphrun stats) send as x-api-key, as the SDK reads it; "
        "--api-key wins",
        "LANGGRAPH_API_KEY",
    )
    error_detail: str = _setting(
        "redacted",
        "mode",
        "a failed run's error for clients: redacted (its type and masked message, as the official "
        "server) or safe (a stable code and a fixed message; the cause only in logs and traces)",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``GRAPHRUN_*`` variables; ``overrides`` (e.g. from CLI flags) win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = env_name(f)
            if name in env:
                values[f.name] = _parse(name, env[name], type(f.default))
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Every rule of ``_RULES`` in order (the first broken one is the error), then the redaction
        settings: a bad pattern or PII name stops start-up, not the first log line."""
        for name, passes, message in _RULES:
            value = getattr(self, name)
            if not passes(value, self):
                raise ConfigError(message.format(env=env_name(_FIELDS[name]), value=value))
        self.redactor()

    def redactor(self, secret_values: Iterable[str] = ()) -> redact.Redactor:
        """The process's redactor from the ``GRAPHRUN_REDACT_*`` settings; ``secret_values`` are literal
        secrets to mask wherever they appear (see ``secret_env_values``)."""
        try:
            patterns = json.loads(self.redact_patterns) if self.redact_patterns.strip() else []
        except json.JSONDecodeError as exc:
            raise ConfigError(f"GRAPHRUN_REDACT_PATTERNS must be a JSON list of regexes: {exc}") from exc
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError("GRAPHRUN_REDACT_PATTERNS must be a JSON list of regexes (strings)")
        try:
            return redact.Redactor(
                extra_keys=_split(self.redact_keys),
                pii=_split(self.redact_pii),
                patterns=patterns,
                secret_values=secret_values,
            )
        except re.error as exc:
            raise ConfigError(
                f"GRAPHRUN_REDACT_PATTERNS has an invalid regex {exc.pattern!r}: {exc}"
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"GRAPHRUN_REDACT_PII: {exc}") from exc

    @property
    def direct_database_uri(self) -> str:
        """Where migrations, the savers' setup and LISTEN connect: PostgreSQL itself, never a pooler in
        transaction mode (whose server connections change between transactions)."""
        return self.database_direct_uri or self.database_uri

    @property
    def database_pooled(self) -> bool:
        """DATABASE_URI is a pooler in transaction mode: no prepared statements, no session state on it."""
        return bool(self.database_direct_uri) and self.database_direct_uri != self.database_uri

    @property
    def langsmith_enabled(self) -> bool:
        return self.langsmith_tracing.strip().lower() == "true"

    @property
    def langfuse_enabled(self) -> bool:
        return bool(self.langfuse_public_key)

    @property
    def traces_exported(self) -> bool:
        exporter = self.otel_traces_exporter.strip().lower()
        if exporter == "none":
            return False
        return exporter == "console" or bool(
            self.otel_exporter_otlp_endpoint or self.otel_exporter_otlp_traces_endpoint
        )

    @property
    def cors_origins(self) -> list[str]:
        return _split(self.cors_allow_origins)

    def cors_origins_for(self, auth_on: bool) -> list[str]:
        """The configured origins; by default every origin without auth, and none with it."""
        if self.cors_allow_origins.strip():
            return self.cors_origins
        return [] if auth_on else ["*"]

    @property
    def open_paths(self) -> list[str]:
        """The paths answered without credentials; an open ``/docs`` or ``/redoc`` opens the document
        they show, ``/openapi.json`` (else the page opens on an error)."""
        paths = _split(self.auth_open_paths)
        if {"/docs", "/redoc"} & set(paths) and "/openapi.json" not in paths:
            paths.append("/openapi.json")
        return paths


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
# A rule's test: the setting's value, and the settings for rules between two of them.
_Check = Callable[[Any, Settings], bool]


def _one_of(*choices: str) -> _Check:
    return lambda value, _: value in choices


def _at_least(low: int) -> _Check:
    return lambda value, _: bool(value >= low)


def _is_rate(value: str) -> bool:
    try:
        limits.parse(value)
    except ValueError:
        return False
    return True


# What ``Settings.validate`` checks, in order: the setting, its test, and the message when it fails
# (``{env}``: the setting's variable, ``{value}``: what it was set to).
_RULES: tuple[tuple[str, _Check, str], ...] = (
    ("error_detail", _one_of("redacted", "safe"), "{env} must be redacted or safe, not {value!r}"),
    ("rate_limit", lambda v, _: not v or _is_rate(v), "{env} {value!r} is not a rate such as 100/minute"),
    ("max_body_bytes", _at_least(0), "{env} must be 0 (no limit) or more"),
    ("alert_retries", _at_least(0), "{env} must be 0 or more"),
    ("breaker_failures", _at_least(0), "{env} must be 0 (off) or more"),
    ("node_io", _one_of("off", "summary", "full"), "{env} must be off, summary or full, not {value!r}"),
    (
        "log_level",
        lambda v, _: v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        "{env} must be DEBUG, INFO, WARNING or ERROR, not {value!r}",
    ),
    ("log_format", _one_of("json", "console"), "{env} must be 'json' or 'console', not {value!r}"),
    (
        "default_durability",
        _one_of("sync", "async", "exit"),
        "{env} must be sync, async or exit, not {value!r}",
    ),
    *(
        (name, _at_least(1), "{env} must be at least 1")
        for name in ("worker_concurrency", "max_attempts", "pg_pool_min_size", "stream_max_events")
    ),
    (
        "pg_pool_max_size",
        lambda v, s: v >= s.pg_pool_min_size,
        "{env} must be at least GRAPHRUN_PG_POOL_MIN_SIZE",
    ),
    ("ttl_sweep_limit", _at_least(1), "{env} must be 1 or more"),
    (
        "thread_ttl_strategy",
        _one_of("delete", "keep_latest"),
        "{env} must be delete or keep_latest, not {value!r}",
    ),
    ("thread_ttl_minutes", _at_least(0), "{env} must be 0 (never) or more"),
    ("webhook_retries", _at_least(0), "{env} must be 0 or more"),
    ("port", lambda v, _: 1 <= v <= 65535, "{env} must be between 1 and 65535, not {value}"),
    *(
        (f.name, lambda v, _: v > 0, "{env} must be more than 0 seconds")
        for f in _FIELDS.values()
        if f.metadata["unit"] == "s"
    ),
    (
        "database_direct_uri",
        lambda v, s: not v or bool(s.database_uri),
        "{env} is set but DATABASE_URI is not: set both, or neither",
    ),
    ("heartbeat_interval_s", lambda v, s: v < s.lease_s, "{env} must be shorter than GRAPHRUN_LEASE_S"),
)


def _split(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of environment variables whose names say they hold a secret (``OPENAI_API_KEY``,
    ``LANGSMITH_API_KEY``, ``*_PASSWORD``, ...): masked literally wherever they would be written."""
    env = os.environ if environ is None else environ
    probe = redact.Redactor(pii=())
    return [value for name, value in env.items() if value and probe.is_secret_key(name)]


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is Path:
            return Path(raw)
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc


def resolve_templates(value: str, pattern: re.Pattern[str], environ: Mapping[str, str] | None = None) -> str:
    """``value`` with each ``pattern`` match (whose group 1 names a variable) replaced by that variable's
    value: the ``${{ env.NAME }}`` templates of ``webhooks.headers``. A variable that is not set stops
    start-up."""
    env = os.environ if environ is None else environ

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"webhooks.headers reads env.{name}, which is not set")
        return env[name]

    return pattern.sub(one, value)


def export_env(values: Mapping[str, str]) -> None:
    """Put ``langgraph.json``'s ``env`` into the process environment, where the user's graphs (and
    ``Settings.from_env``) read it. Variables already set win, as with the LangGraph CLI's env file."""
    for key, value in values.items():
        os.environ.setdefault(key, value)


def describe() -> list[tuple[str, str, str, str]]:
    """(env name, default, unit, help) for every setting, in declaration order."""
    return [
        (env_name(f), str(f.default), f.metadata["unit"], f.metadata["help"])
        for f in dataclasses.fields(Settings)
    ]


def redacted(uri: str) -> str:
    """A URI or connection string without its password, for messages."""
    if "://" not in uri:
        try:
            params = psycopg.conninfo.conninfo_to_dict(uri)
        except psycopg.ProgrammingError:
            return "<invalid connection string>"
        params.pop("password", None)
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
    scheme, _, rest = uri.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return uri
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else f"{scheme}://{user}@{host}"
