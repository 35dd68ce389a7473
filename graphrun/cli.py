"""``graphrun``: the command line. Parses the command and its flags; ``serve`` does the wiring."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import httpx

from graphrun import __version__, redact, serve
from graphrun import settings as settings_mod
from graphrun.errors import GraphrunError
from graphrun.settings import Settings
from graphrun.telemetry import configure_logging, configure_tracing


def _parser() -> argparse.ArgumentParser:
    rows = "\n".join(
        f"  {name:<34} {default:<14} {unit:<9} {text}"
        for name, default, unit, text in settings_mod.describe()
    )
    parser = argparse.ArgumentParser(
        prog="graphrun",
        description="A production runtime for LangGraph agents, speaking the LangGraph Server API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"settings (environment variables):\n  {'name':<34} {'default':<14} {'unit':<9} meaning\n"
        + rows,
    )
    parser.add_argument("--version", action="version", version=f"graphrun {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text, http in (
        ("dev", "serve the API and execute runs in one process, on SQLite (embedded mode)", True),
        ("serve", "production mode, one process: the API and a worker, on PostgreSQL (+ Redis)", True),
        ("api", "production mode: the HTTP API only (runs execute on `graphrun worker` processes)", True),
        ("worker", "production mode: execute runs only", False),
        ("migrate", "bring the PostgreSQL schema up to date (safe when several start at once)", False),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--config", type=Path, help="langgraph.json (default: GRAPHRUN_CONFIG or ./langgraph.json)"
        )
        if http:
            command.add_argument("--host", help="address to bind (default: GRAPHRUN_HOST or 127.0.0.1)")
            command.add_argument("--port", type=int, help="port (default: GRAPHRUN_PORT or 2024)")
    stats = commands.add_parser(
        "stats", help="conversation analytics of a running server (GET /stats): runs, turns, latency, tokens"
    )
    stats.add_argument("--url", default="http://127.0.0.1:2024", help="the server (default: %(default)s)")
    stats.add_argument("--hours", type=float, default=24.0, help="the window, in hours (default: 24)")
    stats.add_argument("--graph-id", help="one graph's runs only")
    stats.add_argument("--json", action="store_true", help="print the JSON answer as it is")
    _client_flags(stats)
    relay = commands.add_parser(
        "alert-relay", help="pass Alertmanager's webhook on to Slack, Feishu and DingTalk (no langgraph.json)"
    )
    relay.add_argument("--host", help="address to bind (default: GRAPHRUN_HOST or 127.0.0.1)")
    relay.add_argument(
        "--port", type=int, dest="relay_port", help="port (default: GRAPHRUN_ALERT_RELAY_PORT or 9095)"
    )
    return parser


def _client_flags(command: argparse.ArgumentParser) -> None:
    """The flags of every command that talks to a running server."""
    command.add_argument(
        "--api-key", help="the server's API key, sent as x-api-key (default: LANGGRAPH_API_KEY)"
    )


def _client_headers(args: argparse.Namespace) -> dict[str, str]:
    key = args.api_key or Settings.from_env().client_api_key
    return {"x-api-key": key} if key else {}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        return _main(args, stack)


def _main(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    if args.command == "alert-relay":
        return _reported(lambda: _alert_relay(args))
    if args.command == "stats":
        return _stats(args)
    return _reported(lambda: _serve(args, stack))


def _reported(command: Callable[[], None]) -> int:
    """The exit code of ``command``: 2 with the message of a graphrun error, 130 on Ctrl-C."""
    try:
        command()
    except GraphrunError as exc:
        print(f"graphrun: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _serve(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    overrides = {
        "config": args.config,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    config = serve.prepare_config(Settings.from_env(**overrides))
    # The config's env may set GRAPHRUN_* too: read the settings again once it is in place.
    settings_mod.export_env(config.env)
    # What langgraph.json sets (checkpointer.ttl) wins over the environment, as the CLI flags do.
    settings = Settings.from_env(**config.settings_overrides(), **overrides)
    api_keys = [e.partition("=")[2].strip() for e in settings.api_keys.split(",") if e.strip()]
    redact.install(settings.redactor([*settings_mod.secret_env_values(), *api_keys]))
    configure_logging(settings.log_level, settings.log_format)
    provider = configure_tracing(
        exporter=settings.otel_traces_exporter,
        endpoint=settings.otel_exporter_otlp_endpoint,
        traces_endpoint=settings.otel_exporter_otlp_traces_endpoint,
        service_name=settings.otel_service_name,
        role=args.command,
    )
    stack.callback(provider.shutdown)  # flushes the spans still queued for export
    if args.command == "dev":
        _run(serve.serve_embedded(settings, config))
    elif args.command == "migrate":
        _run(serve.migrate(settings, config))
    else:
        roles = {"serve": ("api", "worker"), "api": ("api",), "worker": ("worker",)}[args.command]
        _run(serve.serve_production(settings, config, roles, args.command))


def _stats(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"hours": args.hours}
    if args.graph_id:
        params["graph_id"] = args.graph_id
    try:
        headers = _client_headers(args)
        response = httpx.get(f"{args.url.rstrip('/')}/stats", params=params, headers=headers, timeout=60)
    except GraphrunError as exc:
        print(f"graphrun: {exc.message}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"graphrun: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    if response.status_code != 200:
        detail = response.json().get("detail") if "json" in response.headers.get("content-type", "") else ""
        answer = detail or response.text
        if response.status_code == 401:
            answer += " (give the key with --api-key or LANGGRAPH_API_KEY)"
        print(f"graphrun: {args.url} answered {response.status_code}: {answer}", file=sys.stderr)
        return 2
    found = response.json()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(render_stats(found))
    return 0


def render_stats(found: dict[str, Any]) -> str:
    """``GET /stats``'s answer as a few lines for a person."""

    def num(value: Any, unit: str = "") -> str:
        if value is None:
            return "-"
        return f"{value * 100:.2f} %" if unit == "%" else f"{value}{unit}"

    turns, latency = found["turns_per_thread"], found["latency_s"]
    graph = f", graph {found['graph_id']}" if found["graph_id"] else ""
    statuses = "  ".join(f"{k} {v}" for k, v in found["runs_by_status"].items())
    percentiles = "  ".join(f"{p} {num(latency[p], 's')}" for p in ("p50", "p95", "p99"))
    lines = [
        f"runs created {found['since']} .. {found['until']}{graph}",
        f"  threads active   {found['threads_active']}",
        f"  runs             {found['runs']}  {statuses}",
        f"  turns per thread avg {num(turns['avg'])}  p95 {num(turns['p95'])}",
        f"  run latency      {percentiles}",
        f"  error rate       {num(found['error_rate'], '%')}  timeout rate {num(found['timeout_rate'], '%')}",
    ]
    for model, tokens in found["tokens_by_model"].items():
        lines.append(f"  tokens {model:<24} in {tokens['input']}  out {tokens['output']}")
    return "\n".join(lines)


def _alert_relay(args: argparse.Namespace) -> None:
    settings = Settings.from_env(host=args.host, alert_relay_port=args.relay_port)
    # A chat system's webhook URL is itself a credential: it is masked like one.
    urls = [getattr(settings, f"alert_{t}_webhook_url") for t in ("slack", "feishu", "dingtalk")]
    secrets = [*settings_mod.secret_env_values(), *filter(None, urls)]
    redact.install(settings.redactor(secrets))
    configure_logging(settings.log_level, settings.log_format)
    _run(serve.serve_alert_relay(settings))


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it is, with uvicorn[standard]): the server's event loop is
    its hottest code, and uvloop runs it markedly faster than the stock loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
