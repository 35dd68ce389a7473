"""The checkpointer and the long-term store, chosen by configuration (``GRAPHRUN_CHECKPOINTER``,
``GRAPHRUN_STORE``), all through the official LangGraph savers.

Kinds: ``postgres`` (``langgraph-checkpoint-postgres``, saver and store on one ``psycopg_pool`` pool sized
by the ``GRAPHRUN_PG_POOL_*`` settings), ``sqlite`` (files under ``GRAPHRUN_DATA_DIR``), ``memory`` (for
tests), ``redis`` (``langgraph-checkpoint-redis``; needs the JSON and Search modules: Redis 8 or Redis
Stack), ``mongodb`` (``langgraph-checkpoint-mongodb`` and ``langgraph-store-mongodb``), or ``module:attr``
naming the user's own. ``docs/savers.md`` says which to pick and what the conformance suite reports.

Workarounds of the official savers live here and nowhere else, each with a test that shows it is still
needed: ``ConcurrentPostgresSaver`` (langgraph issue #7259: every query of an ``AsyncPostgresSaver`` waits
for one lock per saver) and ``RedisSaver`` (the Redis saver drops the run's metadata).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import inspect
import math
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import psycopg
import redis.exceptions
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
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

from graphrun import fence, metrics, usercode
from graphrun.errors import ConfigError, StoreUnavailable
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
# How often expired store items are deleted when langgraph.json does not say (minutes, as TTLConfig).
default_sweep_interval_minutes = 1
# Database MongoDB savers use when the URI names none.
mongodb_default_database = "graphrun"

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
T = TypeVar("T")


class _NeverWaits(asyncio.Lock):
    """An ``asyncio.Lock`` that every caller acquires at once (see ``ConcurrentPostgresSaver``)."""

    async def acquire(self) -> Literal[True]:
        return True

    def release(self) -> None:
        pass

    def locked(self) -> bool:
        return False


class FencedWrites(BaseCheckpointSaver[Any]):
    """A saver whose writes a worker that lost the run's lease cannot make (``graphrun/fence.py``)."""

    async def aput(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        await fence.check()
        return await super().aput(*args, **kwargs)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        await fence.check()
        await super().aput_writes(*args, **kwargs)


class ConcurrentPostgresSaver(FencedWrites, AsyncPostgresSaver):
    """``AsyncPostgresSaver`` on a connection pool, its queries running concurrently.

    The stock saver enters ``self.lock``, one ``asyncio.Lock`` per saver, around every query (and holds it
    while ``alist`` is iterated), so all checkpoint I/O of a process runs one query at a time
    (langgraph issue #7259). That lock guards a *single shared* connection or pipeline. On a pool,
    ``_cursor`` checks out a connection of its own for each call, which the pool never hands to two
    callers, so the lock protects nothing and only serialises; the library's own ``AsyncPostgresStore``
    already uses a fresh lock per call when it is on a pool. Every other attribute of the saver is read
    only. So this saver keeps the library's code and swaps the lock for one that never waits; it accepts
    only a pool. (Several stock savers dispatched per call would cap concurrency at their number and
    must forward every method of ``BaseCheckpointSaver``.) ``tests/integration/test_savers.py`` shows
    the stock saver still serialises, and that two reads overlap on this one.
    """

    def __init__(self, pool: Pool, **kwargs: Any) -> None:
        if not isinstance(pool, AsyncConnectionPool):
            raise TypeError("ConcurrentPostgresSaver needs an AsyncConnectionPool")
        super().__init__(pool, **kwargs)
        self.lock = _NeverWaits()


class RedisSaver(FencedWrites, AsyncRedisSaver):
    """``AsyncRedisSaver`` that records the config's metadata (``run_id``, ``graph_id``, ...) in each
    checkpoint's metadata, as every other official saver does through ``get_checkpoint_metadata``. The
    stock one keeps only what the graph passes, so a thread's history would not say which run wrote a
    checkpoint (needed to resume a crashed run and to roll one back). ``tests/integration/test_savers.py``
    shows the stock saver still drops it."""

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        stream_mode: str = "values",
    ) -> RunnableConfig:
        merged = get_checkpoint_metadata(config, metadata)
        return await super().aput(config, checkpoint, merged, new_versions, stream_mode)


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


# The checkpointers graphrun opens itself; a custom one (module:attr) brings its own serializer.
BUILT_IN = frozenset({"memory", "sqlite", "postgres", "redis", "mongodb"})


def serializer(serde: Mapping[str, Any]) -> JsonPlusSerializer:
    """``checkpointer.serde`` of langgraph.json, as the official server reads it: ``allowed_json_modules``
    (``true``, or module paths such as ``["my_agent", "state", "Plan"]``) may be rebuilt from JSON, and
    ``pickle_fallback`` (default true once the section is given) stores what msgpack cannot as a pickle
    and reads pickles back. Without the section, LangGraph's default serializer stays."""
    allowed = serde.get("allowed_json_modules")
    modules = allowed if allowed is True or allowed is None else [tuple(path) for path in allowed]
    return JsonPlusSerializer(
        pickle_fallback=serde.get("pickle_fallback", True), allowed_json_modules=modules
    )


def store_ttl(store_config: Mapping[str, Any] | None) -> TTLConfig:
    """The store's TTL settings from ``langgraph.json``'s ``store.ttl`` (validated by ``config``;
    minutes, as in the LangGraph CLI), with a sweep interval always set: items put with a ``ttl`` must
    expire even when langgraph.json sets no default (the SQL stores' reads do not skip expired items;
    only their sweepers remove them)."""
    ttl = dict((store_config or {}).get("ttl") or {})
    ttl.setdefault("sweep_interval_minutes", default_sweep_interval_minutes)
    return TTLConfig(**ttl)  # type: ignore[typeddict-item]


def _check_kind(env: str, kind: str) -> None:
    if kind not in KINDS and ":" not in kind:
        raise ConfigError(f"{env} must be one of {', '.join(KINDS)} or module:attr, not {kind!r}")


def sqlite_store_connection(path: str, *, vectors: bool) -> aiosqlite.Connection:
    """The SQLite store's connection, opened as ``AsyncSqliteStore.from_conn_string`` opens it. With
    vectors (``store.index``) the store loads sqlite-vec, which needs a sqlite3 that loads extensions;
    many Pythons (pyenv's and python.org's builds, macOS's) have none, so where this one cannot, the
    store's connection comes from pysqlite3 (the ``pysqlite3-binary`` wheel, a dependency on Linux
    x86_64), which aiosqlite drives the same way. The checkpointer keeps the standard module."""
    module: Any = sqlite3
    if vectors and not hasattr(sqlite3.Connection, "enable_load_extension"):
        try:
            module = importlib.import_module("pysqlite3.dbapi2")
        except ImportError:
            raise ConfigError(
                "store.index on SQLite needs sqlite-vec, and this Python's sqlite3 cannot load "
                f"extensions ({sys.executable} was built without them) nor is pysqlite3 installed; "
                "pip install pysqlite3-binary (Linux x86_64), use a Python that can (e.g. Debian's "
                "python3), or set GRAPHRUN_STORE=memory or redis"
            ) from None
    # aiosqlite.connect() hard-wires the standard module; its Connection takes any connector.
    return aiosqlite.Connection(functools.partial(module.connect, path, isolation_level=None), 64)


def _sqlite_index(index: dict[str, Any] | None) -> Any:
    """langgraph.json's ``store.index`` for the SQLite store. langgraph-checkpoint-sqlite 3.1 reads the
    fields to embed from ``text_fields`` instead of IndexConfig's ``fields`` (langgraph issue 8808, open),
    so given ``fields`` alone it embeds whole JSON documents; it is handed both."""
    if index and "fields" in index and "text_fields" not in index:
        return {**index, "text_fields": index["fields"]}
    return index


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
            store = AsyncSqliteStore(conn, ttl=ttl, index=_sqlite_index(self.index))
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
