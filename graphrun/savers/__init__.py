"""The checkpointer and the long-term store, chosen by configuration (``GRAPHRUN_CHECKPOINTER``,
``GRAPHRUN_STORE``), all through the official LangGraph savers.

Kinds: ``postgres`` (``langgraph-checkpoint-postgres``, saver and store on one ``psycopg_pool`` pool sized
by the ``GRAPHRUN_PG_POOL_*`` settings), ``sqlite`` (files under ``GRAPHRUN_DATA_DIR``), ``memory`` (for
tests), ``redis`` (``langgraph-checkpoint-redis``; needs the JSON and Search modules: Redis 8 or Redis
Stack), ``mongodb`` (``langgraph-checkpoint-mongodb`` and ``langgraph-store-mongodb``), or ``module:attr``
naming the user's own. ``docs/savers.md`` says which to pick and what the conformance suite reports.

Workarounds of the official savers live in ``savers/workarounds.py`` and nowhere else, each with a test
that shows it is still needed (re-exported here: ``ConcurrentPostgresSaver``, ``RedisSaver``...); this
module chooses the kinds and opens them, with the tunables tests patch. It stays one module, a little
over 400 lines, so that every kind's opener reads side by side with the one choice between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import redis.exceptions
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import BaseStore, TTLConfig
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.redis.aio import AsyncRedisStore
from langgraph.store.sqlite.aio import AsyncSqliteStore
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from redis.asyncio import Redis
from redis.exceptions import RedisError

from graphrun import metrics, usercode
from graphrun.errors import ConfigError, StoreUnavailable
from graphrun.savers.options import BUILT_IN
from graphrun.savers.options import serializer as serializer
from graphrun.savers.options import store_ttl as store_ttl
from graphrun.savers.workarounds import (
    ConcurrentPostgresSaver as ConcurrentPostgresSaver,
)
from graphrun.savers.workarounds import FencedWrites as FencedWrites
from graphrun.savers.workarounds import Pool, sqlite_index
from graphrun.savers.workarounds import RedisSaver as RedisSaver
from graphrun.savers.workarounds import sqlite_store_connection as sqlite_store_connection
from graphrun.settings import Settings, redacted
from graphrun.stores.pgsaver import serialised_setup
from graphrun.types import Persistence

# Errors that mean a database does not answer right now (not that a request or a graph is wrong): the
# API answers 503 to retry, and a run that meets one is handed back rather than failed.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    psycopg.OperationalError,
    PoolTimeout,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

KINDS = ("postgres", "sqlite", "memory", "redis", "mongodb")
# How long opening the PostgreSQL pool waits for its first connections before giving up (s).
pool_open_timeout_s = 10.0
# Longest a query waits for a pooled connection: when the database is down, fail fast (503) instead of
# holding requests for psycopg_pool's default 30 s.
pool_wait_s = 5.0
# How long a Redis or MongoDB server may take to answer the first command before giving up (s).
connect_timeout_s = 10.0
# Database MongoDB savers use when the URI names none.
mongodb_default_database = "graphrun"

T = TypeVar("T")


def checkpointer_kind(settings: Settings) -> str:
    """The checkpointer ``settings`` select: ``GRAPHRUN_CHECKPOINTER``, else postgres with a
    ``DATABASE_URI``, else sqlite."""
    kind = settings.checkpointer or ("postgres" if settings.database_uri else "sqlite")
    _check_kind("GRAPHRUN_CHECKPOINTER", kind)
    return kind


def store_kind(settings: Settings) -> str:
    """The store ``settings`` select: ``GRAPHRUN_STORE``, else the checkpointer's kind (when the
    checkpointer is a ``module:attr`` of the user's: postgres with a ``DATABASE_URI``, else sqlite)."""
    kind = settings.store or checkpointer_kind(settings)
    if not settings.store and kind not in KINDS:
        kind = "postgres" if settings.database_uri else "sqlite"
    _check_kind("GRAPHRUN_STORE", kind)
    return kind


@contextlib.asynccontextmanager
async def open_persistence(
    settings: Settings,
    store_config: Mapping[str, Any] | None = None,
    *,
    key_prefix: str = "",
    index: Mapping[str, Any] | None = None,
    serde: Mapping[str, Any] | None = None,
) -> AsyncIterator[Persistence]:
    """Open the checkpointer and store ``settings`` select, set up (tables, indexes) and ready; both
    close when the block exits. ``store_config`` is langgraph.json's ``store`` (its ``ttl`` is honoured
    where the store supports TTL). ``key_prefix`` starts Redis keys and index names and MongoDB
    collection names (tests keep apart with it; several deployments may share a server with it).
    ``index`` is ``store.index`` with its embeddings loaded (``graphs.load_store_index``): the store
    embeds what is put and searches by meaning. ``serde`` is ``checkpointer.serde`` (``serializer``)."""
    async with contextlib.AsyncExitStack() as stack:
        opener = _Opener(settings, stack, key_prefix, index)
        kind = checkpointer_kind(settings)
        saver = await opener.checkpointer(kind)
        if serde is not None and kind in BUILT_IN:
            saver.serde = serializer(serde)
        store = await opener.store(store_kind(settings), store_ttl(store_config))
        yield Persistence(checkpointer=saver, store=store)


def _check_kind(env: str, kind: str) -> None:
    if kind not in KINDS and ":" not in kind:
        raise ConfigError(f"{env} must be one of {', '.join(KINDS)} or module:attr, not {kind!r}")


class _Opener:
    """Opens savers and stores into one exit stack; PostgreSQL pools are shared by URI."""

    def __init__(
        self,
        settings: Settings,
        stack: contextlib.AsyncExitStack,
        key_prefix: str,
        index: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.stack = stack
        self.prefix = key_prefix
        self.index: Any = dict(index) if index else None  # the stores' IndexConfig
        self._pools: dict[str, Pool] = {}

    async def checkpointer(self, kind: str) -> BaseCheckpointSaver[Any]:
        uri = self.settings.checkpointer_uri
        if kind == "memory":
            return InMemorySaver()
        if kind == "sqlite":
            path = uri or str(self._data_dir() / "checkpoints.sqlite")
            saver = await self.stack.enter_async_context(AsyncSqliteSaver.from_conn_string(path))
            await saver.setup()
            return saver
        if kind == "postgres":
            uri = self._uri("CHECKPOINTER", kind, uri)
            pool = await self._pool(uri)
            await self._setup(uri, pool, lambda conn: AsyncPostgresSaver(conn).setup())
            return ConcurrentPostgresSaver(pool)
        if kind == "redis":
            return await self._redis_saver(self._uri("CHECKPOINTER", kind, uri))
        if kind == "mongodb":
            return await self._mongodb_saver(self._uri("CHECKPOINTER", kind, uri))
        return await self._custom("GRAPHRUN_CHECKPOINTER", kind, BaseCheckpointSaver)

    async def store(self, kind: str, ttl: TTLConfig) -> BaseStore:
        uri = self.settings.store_uri
        if kind == "memory":
            return InMemoryStore(index=self.index)  # keeps no TTL
        if kind == "sqlite":
            path = uri or str(self._data_dir() / "store.sqlite")
            connection = sqlite_store_connection(path, vectors=bool(self.index))
            conn = await self.stack.enter_async_context(connection)
            store = AsyncSqliteStore(conn, ttl=ttl, index=sqlite_index(self.index))
            await store.setup()  # with an index, it loads sqlite-vec and makes the vector table
            await self._sweep(store)
            return store
        if kind == "postgres":
            uri = self._uri("STORE", kind, uri)
            pool = await self._pool(uri)
            try:
                await self._setup(uri, pool, lambda conn: AsyncPostgresStore(conn, index=self.index).setup())
            except psycopg.errors.FeatureNotSupported as exc:  # CREATE EXTENSION vector found none
                raise ConfigError(
                    "store.index on PostgreSQL needs the pgvector extension, which this server does not "
                    f"have ({str(exc).splitlines()[0]}); install it (Debian and Ubuntu: "
                    "postgresql-<version>-pgvector) or use "
                    "GRAPHRUN_STORE=redis"
                ) from exc
            pg_store = AsyncPostgresStore(pool, ttl=ttl, index=self.index)
            await self._sweep(pg_store)
            return pg_store
        if kind == "redis":
            return await self._redis_store(self._uri("STORE", kind, uri), ttl)
        if kind == "mongodb":
            return await self._mongodb_store(self._uri("STORE", kind, uri), ttl)
        return await self._custom("GRAPHRUN_STORE", kind, BaseStore)  # type: ignore[type-abstract]

    def _data_dir(self) -> Path:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.data_dir

    def _uri(self, what: str, kind: str, explicit: str) -> str:
        """The URI a saver connects to: ``GRAPHRUN_<WHAT>_URI``, else ``DATABASE_URI`` (postgres) or
        ``REDIS_URI`` (redis)."""
        fallback = {"postgres": self.settings.database_uri, "redis": self.settings.redis_uri}.get(kind, "")
        if explicit or fallback:
            return explicit or fallback
        also = {"postgres": " or DATABASE_URI", "redis": " or REDIS_URI"}.get(kind, "")
        raise ConfigError(f"GRAPHRUN_{what}={kind} needs GRAPHRUN_{what}_URI{also}")

    async def _sweep(self, store: AsyncSqliteStore | AsyncPostgresStore) -> None:
        await store.start_ttl_sweeper()
        self.stack.push_async_callback(store.stop_ttl_sweeper)

    def _pooled(self, uri: str) -> bool:
        """``uri`` is DATABASE_URI and that is a pooler in transaction mode (PgBouncer)."""
        return self.settings.database_pooled and uri == self.settings.database_uri

    async def _setup(
        self, uri: str, pool: Pool, setup: Callable[[AsyncConnection[DictRow]], Awaitable[None]]
    ) -> None:
        """A saver's ``setup()`` under the setup lock: a session's, so through a pooler in transaction
        mode it runs on a connection of its own to PostgreSQL itself (GRAPHRUN_DATABASE_DIRECT_URI)."""
        if not self._pooled(uri):
            await serialised_setup(pool, setup)
            return
        direct = self.settings.database_direct_uri
        try:
            conn = await AsyncConnection.connect(direct, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"PostgreSQL at {redacted(direct)} is unreachable: {exc}") from exc
        async with conn:
            await serialised_setup(conn, setup)

    async def _pool(self, uri: str) -> Pool:
        if uri not in self._pools:
            s = self.settings
            pool: Pool = AsyncConnectionPool(
                uri,
                min_size=s.pg_pool_min_size,
                max_size=s.pg_pool_max_size,
                max_idle=s.pg_pool_max_idle_s,
                max_lifetime=s.pg_pool_max_lifetime_s,
                timeout=pool_wait_s,
                # What the official savers require of their connections; through a pooler in transaction
                # mode, no prepared statements (the next transaction may meet another server connection).
                kwargs={
                    "autocommit": True,
                    "prepare_threshold": None if self._pooled(uri) else 0,
                    "row_factory": dict_row,
                },
                open=False,
                name="graphrun-savers",
            )
            metrics.watch_pool(f"savers-{len(self._pools)}", pool)
            try:
                await pool.open(wait=True, timeout=pool_open_timeout_s)
            except (PoolTimeout, psycopg.Error) as exc:
                await pool.close()
                raise StoreUnavailable(f"PostgreSQL at {redacted(uri)} is unreachable: {exc}") from exc
            self.stack.push_async_callback(pool.close)
            self._pools[uri] = pool
        return self._pools[uri]

    async def _redis_saver(self, uri: str) -> BaseCheckpointSaver[Any]:
        saver = RedisSaver(
            redis_client=await self._redis_client(uri),
            checkpoint_prefix=f"{self.prefix}checkpoint",
            checkpoint_write_prefix=f"{self.prefix}checkpoint_write",
        )
        return await self.stack.enter_async_context(saver)  # entering it creates its indexes

    async def _redis_store(self, uri: str, ttl: TTLConfig) -> BaseStore:
        store = AsyncRedisStore(
            redis_client=await self._redis_client(uri),
            index=self.index,
            ttl=ttl,  # Redis expires keys itself: no sweeper
            store_prefix=f"{self.prefix}store",
            vector_prefix=f"{self.prefix}store_vectors",
        )
        await self.stack.enter_async_context(store)
        await store.setup()
        return store

    async def _redis_client(self, uri: str) -> Redis:
        """A client the savers are given (given a URL, they build one through a deprecated call of
        redisvl's), checked: Redis answers and has the JSON and Search modules. Closed on exit."""
        client: Redis = Redis.from_url(uri, socket_connect_timeout=connect_timeout_s)
        self.stack.push_async_callback(client.aclose)
        try:
            listed = await client.module_list()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis at {redacted(uri)} is unreachable: {exc}") from exc
        modules = {_text(m.get(b"name") or m.get("name")).lower() for m in listed}
        if not any("search" in m for m in modules) or not any("json" in m for m in modules):
            raise ConfigError(
                f"Redis at {redacted(uri)} lacks the JSON and Search modules the Redis saver needs "
                f"(has: {', '.join(sorted(modules)) or 'none'}); use Redis 8 or Redis Stack"
            )
        database = client.connection_pool.connection_kwargs.get("db") or 0
        if int(database) != 0:  # RediSearch: "Cannot create index on db != 0", as a raw traceback
            raise ConfigError(
                f"Redis at {redacted(uri)} is database {database}, but the Redis saver's search indexes "
                "(RediSearch) work only in database 0: end the URI with /0 (a Redis server of its "
                "own, if database 0 holds other data)"
            )
        return client

    # MongoDB's libraries (the ``mongodb`` extra) are imported only when chosen: they bring numpy and
    # SQLAlchemy.

    async def _mongodb_saver(self, uri: str) -> BaseCheckpointSaver[Any]:
        MongoDBSaver = _import_mongodb("langgraph.checkpoint.mongodb", "MongoDBSaver")

        client = await self._mongodb_client(uri)
        database = client.get_default_database(default=mongodb_default_database).name
        saver: BaseCheckpointSaver[Any] = await asyncio.to_thread(  # it creates its indexes
            MongoDBSaver,
            client,
            database,
            checkpoint_collection_name=f"{self.prefix}checkpoints",
            writes_collection_name=f"{self.prefix}checkpoint_writes",
        )
        return saver

    async def _mongodb_store(self, uri: str, ttl: TTLConfig) -> BaseStore:
        MongoDBStore = _import_mongodb("langgraph.store.mongodb", "MongoDBStore")
        if self.index:
            raise ConfigError(
                "store.index with GRAPHRUN_STORE=mongodb needs Atlas vector search; not supported"
            )

        client = await self._mongodb_client(uri)
        collection = client.get_default_database(default=mongodb_default_database)[f"{self.prefix}store"]
        # MongoDB expires items with a TTL index in whole seconds; its sweeper is MongoDB's own (every 60 s).
        default_ttl = ttl.get("default_ttl")
        mongo_ttl: TTLConfig | None = None
        if default_ttl is not None:
            seconds = math.ceil(default_ttl * 60)
            mongo_ttl = {"default_ttl": seconds, "refresh_on_read": ttl.get("refresh_on_read", True)}
        store: BaseStore = await asyncio.to_thread(MongoDBStore, collection, ttl_config=mongo_ttl)
        return store

    async def _mongodb_client(self, uri: str) -> Any:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client: MongoClient[Any] = MongoClient(uri, serverSelectionTimeoutMS=int(connect_timeout_s * 1000))
        self.stack.callback(client.close)
        try:
            await asyncio.to_thread(client.admin.command, "ping")
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB at {redacted(uri)} is unreachable: {exc}") from exc
        return client

    async def _custom(self, env: str, spec: str, expected: type[T]) -> T:
        """The user's saver or store: ``module:attr`` names an instance, a callable returning one (or
        an awaitable of one), or an async context manager factory yielding one, entered for the
        process's life. graphrun does not call ``setup()`` on it."""
        value = load_attr(env, spec)
        if not isinstance(value, expected) and callable(value):
            try:
                inspect.signature(value).bind()
            except TypeError as exc:
                raise ConfigError(f"{env}={spec!r} must take no arguments: {exc}") from exc
            except ValueError:  # no signature to read (a builtin): just call it
                pass
            value = value()
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, expected) and isinstance(value, contextlib.AbstractAsyncContextManager):
            value = await self.stack.enter_async_context(value)
        if not isinstance(value, expected):
            raise ConfigError(
                f"{env}={spec!r} gave {type(value).__name__}, not a {expected.__name__}: name an "
                f"instance, a callable returning one, or an async context manager factory yielding one"
            )
        return value


def _import_mongodb(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigError(
            f"the MongoDB saver and store need graphrun's mongodb extra: "
            f"pip install 'graphrun[mongodb]' ({exc})"
        ) from exc


def load_attr(env: str, spec: str) -> Any:
    """``module:attr`` or ``path/to/file.py:attr`` (relative to the working directory), imported by the
    one rule of ``usercode``."""
    try:
        return usercode.load(spec, Path.cwd())
    except ConfigError as exc:
        raise ConfigError(f"{env}={spec!r}: {exc.message}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
