"""Workarounds of the official savers, each with a test that shows it is still needed, and the fence
graphrun puts on their writes:

* ``ConcurrentPostgresSaver`` (langgraph issue #7259: every query of an ``AsyncPostgresSaver`` waits
  for one lock per saver);
* ``RedisSaver`` (the Redis saver drops the run's metadata);
* ``sqlite_store_connection`` (the SQLite store with vectors needs a sqlite3 that loads extensions) and
  ``sqlite_index`` (langgraph-checkpoint-sqlite reads ``text_fields``, not ``fields``);
* ``FencedWrites``: a saver whose writes a worker that lost the run's lease cannot make.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sqlite3
import sys
from typing import Any, Literal

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.redis.aio import AsyncRedisSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from graphrun import fence
from graphrun.errors import ConfigError

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


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


def sqlite_index(index: dict[str, Any] | None) -> Any:
    """langgraph.json's ``store.index`` for the SQLite store. langgraph-checkpoint-sqlite 3.1 reads the
    fields to embed from ``text_fields`` instead of IndexConfig's ``fields`` (langgraph issue 8808, open),
    so given ``fields`` alone it embeds whole JSON documents; it is handed both."""
    if index and "fields" in index and "text_fields" not in index:
        return {**index, "text_fields": index["fields"]}
    return index
