"""``graphrun``: the command line. Wires settings, stores, graphs, the API and the worker together."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog
import uvicorn

from graphrun import __version__
from graphrun import settings as settings_mod
from graphrun.api import create_app
from graphrun.api.deps import Services
from graphrun.checkpointer import open_persistence
from graphrun.config import LanggraphConfig, load_config
from graphrun.errors import ConfigError, DataDirLocked, GraphrunError
from graphrun.graphs import GraphRegistry, check_graph, load_graphs
from graphrun.models import system_assistant_id
from graphrun.runner import Runner
from graphrun.settings import Settings
from graphrun.stores.sqlite import SqliteStore
from graphrun.streams import LocalBus
from graphrun.telemetry import configure_logging
from graphrun.webhooks import Webhooks
from graphrun.worker import Worker

log = structlog.get_logger("graphrun.cli")

# After SIGTERM, how long open HTTP requests (streams, waits) may go on before the server closes them.
http_shutdown_timeout_s = 10


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
    dev = commands.add_parser("dev", help="serve the API and execute runs in one process, on SQLite")
    dev.add_argument(
        "--config", type=Path, help="langgraph.json (default: GRAPHRUN_CONFIG or ./langgraph.json)"
    )
    dev.add_argument("--host", help="address to bind (default: GRAPHRUN_HOST or 127.0.0.1)")
    dev.add_argument("--port", type=int, help="port (default: GRAPHRUN_PORT or 2024)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides = {"config": args.config, "host": args.host, "port": args.port}
        config = prepare_config(Settings.from_env(**overrides))
        # The config's env may set GRAPHRUN_* too: read the settings again once it is in place.
        settings_mod.export_env(config.env)
        settings = Settings.from_env(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        _run(serve_embedded(settings, config))
    except GraphrunError as exc:
        print(f"graphrun: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it is, with uvicorn[standard]): the server's event loop is
    its hottest code, and uvloop runs it markedly faster than the stock loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def prepare_config(settings: Settings) -> LanggraphConfig:
    config = load_config(settings.config)
    if config.auth and config.auth.get("path"):
        raise ConfigError(
            f"{config.path}: key 'auth.path' is set, but graphrun does not enforce custom auth yet; "
            "remove it to serve without auth rather than believe the server is protected"
        )
    return config


async def serve_embedded(settings: Settings, config: LanggraphConfig) -> None:
    """``graphrun dev``: one process, SQLite under the data dir, API and worker together."""
    loaded = load_graphs(config)
    for key in config.not_applied:
        log.warning("config_key_not_applied", file=str(config.path), key=key)
    with _data_dir_lock(settings.data_dir), _listen(settings.host, settings.port) as sock:
        async with _services(settings, config, loaded) as svc:
            runner = Runner(settings, svc.store, svc.bus, svc.graphs)
            server = _Server(
                uvicorn.Config(
                    create_app(svc),
                    log_config=None,
                    timeout_graceful_shutdown=http_shutdown_timeout_s,
                ),
                on_shutdown=svc.draining.set,
            )
            # The data-dir lock proves no other process executes its runs: the worker recovers orphans.
            webhooks = Webhooks(settings, config.webhook_headers, config.webhook_fields)
            async with (
                webhooks,
                Worker(settings, svc.store, svc.bus, runner, recover_orphans=True, webhooks=webhooks),
            ):
                log.info(
                    "server_started",
                    url=f"http://{settings.host}:{settings.port}",
                    graphs=svc.graphs.graph_ids,
                )
                await server.serve(sockets=[sock])


@contextlib.contextmanager
def _listen(host: str, port: int) -> Iterator[socket.socket]:
    """Bind before anything starts, so that a taken port is one clear error, not a worker that
    claims runs for a server that never serves."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"GRAPHRUN_HOST={host!r} cannot be resolved: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    with sock:
        yield sock


@contextlib.asynccontextmanager
async def _services(settings: Settings, config: LanggraphConfig, loaded: dict) -> AsyncIterator[Services]:  # type: ignore[type-arg]
    async with (
        SqliteStore(settings.data_dir / "graphrun.sqlite") as store,
        open_persistence(settings, config.store) as persistence,
    ):
        registry = GraphRegistry(loaded, persistence)
        for graph_id in registry.graph_ids:
            await check_graph(registry, graph_id)
            await store.ensure_system_assistant(
                system_assistant_id(graph_id), graph_id, registry.description(graph_id)
            )
        yield Services(settings, store, LocalBus(settings.stream_buffer_ttl_s), registry)


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One embedded server per data dir: SQLite and the start-up recovery both rely on it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "graphrun.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DataDirLocked(f"data directory {data_dir} is in use by another graphrun process") from exc
        yield
    finally:
        os.close(fd)


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: it re-raises SIGTERM after serving, which would kill the process
    before the worker's graceful shutdown runs. We stop it ourselves instead, and tell the API first, so that
    open waits and streams end cleanly (503 / end of stream) rather than being cut off."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        log.info("shutdown_requested", signal=signal.Signals(sig).name)
        self._on_shutdown()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True
