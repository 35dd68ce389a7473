"""Wiring the processes: settings and config in, stores, savers, bus, API and worker started and stopped.

Embedded mode (``graphrun dev``) is one process on SQLite. Production mode runs the same API and worker
on PostgreSQL (control store, savers) and Redis (run events, cancels), as one process (``serve``) or as
separate ``api`` and ``worker`` processes, any number of each.

Why over ~400 lines (issue 24): it is the one assembly path on purpose, so that how every mode and process
kind is wired reads in one place (settings, config, adapters, API, worker, signals, shutdown); what it
wires lives in other modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import gc
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI
from langgraph_sdk import Auth
from starlette.types import ASGIApp

from graphrun import __version__, alerts, banner, metrics
from graphrun.api import create_app
from graphrun.api.deps import Services
from graphrun.config import LanggraphConfig, load_config
from graphrun.errors import ConfigError, DataDirLocked
from graphrun.graphs import (
    GraphRegistry,
    check_graph,
    load_auth,
    load_graphs,
    load_http_app,
    load_priority,
    load_store_index,
)
from graphrun.instrument import langfuse_handler
from graphrun.models import system_assistant_id
from graphrun.runner import Runner
from graphrun.savers import open_persistence
from graphrun.settings import Settings, redacted
from graphrun.stores.base import ControlStore
from graphrun.stores.postgres import PgWakeup, PostgresStore, wait_for_postgres
from graphrun.stores.sqlite import SqliteStore
from graphrun.streams import EventBus, LocalBus
from graphrun.types import Persistence
from graphrun.webhooks import UrlPolicy, Webhooks
from graphrun.worker import Worker

log = structlog.get_logger("graphrun.serve")

# After SIGTERM, how long open HTTP requests (streams, waits) may go on before the server closes them.
http_shutdown_timeout_s = 10

# How a worker waits for news of a new run besides its bus (at most ``timeout_s``): PostgreSQL's NOTIFY.
Wakeup = Callable[[float], Coroutine[Any, Any, None]]


def prepare_config(settings: Settings) -> LanggraphConfig:
    return load_config(settings.config)


@dataclasses.dataclass(frozen=True)
class Adapters:
    """What a mode picks; everything else is built once, the same way, by ``_serve``."""

    store: ControlStore
    persistence: Persistence
    bus: EventBus
    wakeup: Wakeup | None = None  # besides the bus, how idle workers hear of runs made elsewhere
    recover_orphans: bool = False  # no other process can be executing this store's runs


@dataclasses.dataclass(frozen=True)
class _Mode:
    """What differs between the modes besides the adapters: checks around start-up and its log event."""

    command: str  # dev, serve, api or worker
    roles: tuple[str, ...]  # api, worker or both
    adapters: Callable[[Settings, LanggraphConfig, tuple[str, ...]], AbstractAsyncContextManager[Adapters]]
    started: str = "process_started"  # the start-up log event
    database_uri: str = ""  # waited for (``startup_timeout_s``) before anything is opened
    data_dir_lock: bool = False  # one process per data dir, locked before the port is bound
    warn_open: bool = False  # log ``authentication_off`` when an API has no authentication


async def serve_embedded(settings: Settings, config: LanggraphConfig) -> None:
    """``graphrun dev``: one process, SQLite under the data dir, API and worker together."""
    mode = _Mode("dev", ("api", "worker"), _embedded, started="server_started", data_dir_lock=True)
    await _serve(settings, config, mode)


async def serve_production(
    settings: Settings, config: LanggraphConfig, roles: Sequence[str], command: str
) -> None:
    """``graphrun serve|api|worker``: the API, a worker, or both, on PostgreSQL and Redis."""
    _require_production(settings, command, roles)
    mode = _Mode(command, tuple(roles), _production, database_uri=settings.database_uri, warn_open=True)
    await _serve(settings, config, mode)


async def _serve(settings: Settings, config: LanggraphConfig, mode: _Mode) -> None:
    """The one assembly path: graphs and auth, the mode's adapters, the registry and the graphs'
    system assistants, then the worker and the HTTP server as the mode's roles ask. Leaving it is the
    shutdown sequence (docs/architecture.md, "Shutdown"): the HTTP server stops first (``_Server``),
    then the exit stack unwinds in reverse: the worker drains, webhooks are sent, the adapters close."""
    loaded = load_graphs(config)
    custom_auth = load_auth(config)
    for key in config.not_applied:
        log.warning("config_key_not_applied", file=str(config.path), key=key)
    if "worker" in mode.roles:
        _check_tracers(settings)
    if mode.warn_open and "api" in mode.roles:
        _warn_if_open(settings, custom_auth)
    if mode.database_uri:
        await asyncio.to_thread(wait_for_postgres, mode.database_uri, startup_timeout_s)
    async with contextlib.AsyncExitStack() as stack:
        if mode.data_dir_lock:
            stack.enter_context(_data_dir_lock(settings.data_dir))
        sock = stack.enter_context(_listen(settings.host, settings.port)) if "api" in mode.roles else None
        adapters = await stack.enter_async_context(mode.adapters(settings, config, mode.roles))
        registry = GraphRegistry(loaded, adapters.persistence)
        for graph_id in registry.graph_ids:
            await check_graph(registry, graph_id)
            await adapters.store.ensure_system_assistant(
                system_assistant_id(graph_id), graph_id, registry.description(graph_id)
            )
        _freeze_startup_heap()
        svc = Services(
            settings,
            adapters.store,
            adapters.bus,
            registry,
            webhook_url=_url_policy(settings, config),
            priority=load_priority(config),
        )
        server = _Server(_uvicorn_config(_app(svc, config, custom_auth)), svc.draining.set) if sock else None
        if "worker" in mode.roles:
            await _start_worker(svc, config, mode, adapters, stack)
        url = f"http://{settings.host}:{settings.port}" if sock else None
        log.info(
            mode.started, command=mode.command, roles=list(mode.roles), url=url, graphs=registry.graph_ids
        )
        if server is not None and sock is not None:
            _banner(settings, config, registry.graph_ids, mode.command, custom_auth)
            await server.serve(sockets=[sock])
        else:
            await _until_signalled()


async def _start_worker(
    svc: Services, config: LanggraphConfig, mode: _Mode, adapters: Adapters, stack: contextlib.AsyncExitStack
) -> None:
    """A worker in this process, entered into ``stack`` (its exit is the worker's graceful shutdown)."""
    settings = svc.settings
    webhooks = _webhooks(settings, config)
    if webhooks is not None:
        await stack.enter_async_context(webhooks)
    runner = Runner(settings, svc.store, svc.bus, svc.graphs)
    worker = Worker(
        settings,
        svc.store,
        svc.bus,
        runner,
        recover_orphans=adapters.recover_orphans,
        webhooks=webhooks,
        wakeup=adapters.wakeup,
        priority=svc.priority,
    )
    if "api" not in mode.roles and settings.metrics_port:
        # /metrics and /ok (alive: the worker's loops turn within a lease) until the worker has
        # drained: the server closes after it.
        health = metrics.serve(settings.metrics_port, settings.host, lambda: worker.stalled(settings.lease_s))
        stack.callback(health.server_close)
        stack.callback(health.shutdown)
    await stack.enter_async_context(worker)


def _app(svc: Services, config: LanggraphConfig, custom_auth: Auth | None) -> FastAPI:
    return create_app(
        svc,
        custom_auth=custom_auth,
        auth_config=config.auth,
        http=config.http,
        user_app=load_http_app(config),
    )


def _uvicorn_config(app: ASGIApp, graceful_s: int | None = http_shutdown_timeout_s) -> uvicorn.Config:
    """Every HTTP server of graphrun: no logging config of uvicorn's (graphrun configures structlog) and
    no access log (``graphrun.api.observe`` logs each request, with its ids)."""
    return uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=graceful_s)


def _webhooks(settings: Settings, config: LanggraphConfig) -> Webhooks | None:
    """The worker's webhook sender; none with ``http.disable_webhooks`` (no run's webhook is called)."""
    if (config.http or {}).get("disable_webhooks"):
        return None
    return Webhooks(settings, config.webhook_headers, config.webhook_fields, _url_policy(settings, config))


def _url_policy(settings: Settings, config: LanggraphConfig) -> UrlPolicy:
    """``webhooks.url``, and ``GRAPHRUN_WEBHOOK_ALLOW_LOCAL`` for local development."""
    return UrlPolicy.of(config.webhook_url, allow_local=settings.webhook_allow_local)


@contextlib.asynccontextmanager
async def _embedded(
    settings: Settings, config: LanggraphConfig, roles: tuple[str, ...]
) -> AsyncIterator[Adapters]:
    """SQLite files under the data dir; the bus and the wake-ups are in-process."""
    async with (
        SqliteStore(settings.data_dir / "graphrun.sqlite") as store,
        open_persistence(
            settings, config.store, index=load_store_index(config), serde=config.serde
        ) as persistence,
    ):
        bus = LocalBus(settings.stream_buffer_ttl_s)
        # The data-dir lock proves no other process executes its runs: the worker recovers orphans.
        yield Adapters(store, persistence, bus, recover_orphans=True)


async def serve_alert_relay(settings: Settings) -> None:
    """``graphrun alert-relay``: Alertmanager's webhook to Slack, Feishu and DingTalk (graphrun.alerts)."""
    with _listen(settings.host, settings.alert_relay_port, "--port or GRAPHRUN_ALERT_RELAY_PORT") as sock:
        app = alerts.create_app(settings)
        server = uvicorn.Server(_uvicorn_config(app, graceful_s=None))
        log.info(
            "alert_relay_started",
            url=f"http://{settings.host}:{settings.alert_relay_port}",
            targets=[t for t in alerts.TARGETS if getattr(settings, f"alert_{t}_webhook_url")],
        )
        await server.serve(sockets=[sock])


def _banner(
    settings: Settings, config: LanggraphConfig, graphs: Sequence[str], command: str, custom_auth: Auth | None
) -> None:
    """Where to go, for the person who started the server (graphrun.banner)."""
    if not banner.wanted(command):
        return
    http = config.http or {}
    keys = settings.api_keys or settings.api_keys_file
    text = banner.render(
        command=command,
        version=__version__,
        url=banner.base_url(settings.host, settings.port),
        data=f"PostgreSQL {redacted(settings.database_uri)}"
        if settings.database_uri
        else str(settings.data_dir.resolve()),
        graphs=graphs,
        console=not http.get("disable_ui"),
        docs=not http.get("disable_meta"),
        auth="auth.path of langgraph.json" if custom_auth else "an API key (x-api-key)" if keys else "",
    )
    banner.show(text)


@contextlib.contextmanager
def _listen(host: str, port: int, choose: str = "--port or GRAPHRUN_PORT") -> Iterator[socket.socket]:
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
        hint = f"; choose another port with {choose}" if exc.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from exc
    with sock:
        yield sock


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
        with _on_signals(self._on_signal):
            yield

    def _on_signal(self, sig: int) -> None:
        self._on_shutdown()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


async def _until_signalled() -> None:
    """A process without an HTTP server (``graphrun worker``) runs until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    with _on_signals(lambda sig: stop.set()):
        await stop.wait()


@contextlib.contextmanager
def _on_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``handler`` (logged) on the event loop, for as long as this is held."""
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        log.info("shutdown_requested", signal=signal.Signals(sig).name)
        handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# ---------------------------------------------------------------- production mode

# How long a production process waits for PostgreSQL at start-up before it gives up with a clear error.
startup_timeout_s = 15.0


@contextlib.asynccontextmanager
async def _production(
    settings: Settings, config: LanggraphConfig, roles: tuple[str, ...]
) -> AsyncIterator[Adapters]:
    """PostgreSQL (control store, savers by default, NOTIFY wake-ups for a worker) and Redis (events,
    cancels), shared by any number of processes."""
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(_postgres_store(settings))
        persistence = await stack.enter_async_context(
            open_persistence(settings, config.store, index=load_store_index(config), serde=config.serde)
        )
        bus = await stack.enter_async_context(_bus(settings))
        wakeup = None
        if "worker" in roles:
            wakeup = (await stack.enter_async_context(PgWakeup(settings.direct_database_uri))).wait
        yield Adapters(store, persistence, bus, wakeup=wakeup)


def _warn_if_open(settings: Settings, custom_auth: Auth | None) -> None:
    if not (settings.api_keys or settings.api_keys_file or custom_auth):
        log.warning(
            "authentication_off",
            message="every client can read and change every thread: set GRAPHRUN_API_KEYS or "
            "GRAPHRUN_API_KEYS_FILE, or auth.path in langgraph.json, or keep the API behind a gateway "
            "that authenticates",
        )


def _require_production(settings: Settings, command: str, roles: Sequence[str]) -> None:
    if not settings.database_uri:
        raise ConfigError(
            f"graphrun {command} needs DATABASE_URI (a PostgreSQL connection string); "
            "for a single process on SQLite use `graphrun dev`"
        )
    if not settings.redis_uri and len(roles) == 1:
        raise ConfigError(
            f"graphrun {command} needs REDIS_URI: API and worker processes share run events and cancels "
            "through Redis (`graphrun serve` runs both in one process and can do without)"
        )


async def migrate(settings: Settings, config: LanggraphConfig) -> None:
    """``graphrun migrate``: the control store's schema and the savers' own (``setup``), then exit."""
    _require_production(settings, "migrate", ("api", "worker"))
    await asyncio.to_thread(wait_for_postgres, settings.direct_database_uri, startup_timeout_s)
    async with (
        _postgres_store(settings),
        open_persistence(settings, config.store, index=load_store_index(config), serde=config.serde),
    ):
        log.info("migrated")


def _postgres_store(settings: Settings) -> PostgresStore:
    return PostgresStore(
        settings.database_uri,
        min_size=settings.pg_pool_min_size,
        max_size=settings.pg_pool_max_size,
        max_idle_s=settings.pg_pool_max_idle_s,
        max_lifetime_s=settings.pg_pool_max_lifetime_s,
        direct_conninfo=settings.direct_database_uri,
        pooled=settings.database_pooled,
    )


@contextlib.asynccontextmanager
async def _bus(settings: Settings) -> AsyncIterator[EventBus]:
    if not settings.redis_uri:
        yield LocalBus(settings.stream_buffer_ttl_s)
        return
    from graphrun.redisbus import RedisBus  # only production mode needs redis

    try:
        bus = RedisBus(
            settings.redis_uri,
            buffer_ttl_s=settings.stream_buffer_ttl_s,
            stream_max_events=settings.stream_max_events,
            share_wakeups=False,  # PgWakeup (LISTEN/NOTIFY) wakes the workers of other processes
        )
    except ValueError as exc:
        raise ConfigError(f"REDIS_URI is not a Redis URL: {exc}") from exc
    async with bus:
        yield bus


def _check_tracers(settings: Settings) -> None:
    """A tracer the environment asks for must be usable before the first run needs it."""
    if settings.langfuse_enabled:
        langfuse_handler()


def _freeze_startup_heap() -> None:
    """What start-up loaded (graphrun, LangGraph, the graphs, FastAPI, the pools) lives as long as the
    process: take it out of the garbage collector's sight (``gc.freeze``), so that its full collections
    scan only what requests and runs allocate. On the production benchmark's graph the collector's share
    of CPU went from about 5 % to under 2 % (bench/README.md)."""
    gc.collect()
    gc.freeze()
