"""A production deployment on loopback for the tests, on the servers the test run was given.

- ``fresh_database``: a new PostgreSQL database on the server at GRAPHRUN_TEST_DATABASE_URI, dropped after.
- ``claimed_redis_db``: a Redis database index nobody uses on the server at GRAPHRUN_TEST_REDIS_URI, flushed
  after. graphrun's processes write under their default key prefix, so they get a database of their own.
- The processes themselves (``Procs``, ``Cluster``, ...) are bench/_cluster.py's and the throwaway
  ``LocalPostgres`` and ``LocalRedis`` bench/_servers.py's, which the chaos drills (bench/chaos.py)
  drive too. ``CONFIG`` is the production tests' ``langgraph.json``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from bench._cluster import BASE_ENV, Cluster, Proc, Procs, graphrun_argv, production_env
from bench._servers import LocalPostgres, LocalRedis

__all__ = [
    "BASE_ENV",
    "CONFIG",
    "TEST_DATABASE_URI",
    "TEST_REDIS_URI",
    "Cluster",
    "LocalPostgres",
    "LocalRedis",
    "Proc",
    "Procs",
    "ServiceMissing",
    "claimed_redis_db",
    "fresh_database",
    "graphrun_argv",
    "production_env",
]

CONFIG = Path(__file__).resolve().parents[1] / "production" / "langgraph.json"

TEST_DATABASE_URI = os.environ.get(
    "GRAPHRUN_TEST_DATABASE_URI", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS_URI = os.environ.get("GRAPHRUN_TEST_REDIS_URI", "redis://127.0.0.1:6379/15")

STARTUP_TIMEOUT_S = 90.0
SIGTERM_GRACE_S = 30.0
LOG_TAIL_CHARS = 12_000
# Marks a Redis database as taken by a test run (expires, in case that run is killed and cannot clean up).
REDIS_CLAIM_KEY = "graphrun-production-tests:claim"
REDIS_CLAIM_TTL_S = 3600


class ServiceMissing(RuntimeError):
    """A server the tests need does not answer; the message says which and how to provide it."""


def _with_path(uri: str, path: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path=path))


# ---------------------------------------------------------------- PostgreSQL and Redis on the shared servers


@contextlib.contextmanager
def fresh_database(label: str, server_uri: str = TEST_DATABASE_URI) -> Iterator[str]:
    """A new, empty database on the server at ``server_uri``; yields its URI and drops it afterwards."""
    name = f"graphrun_prod_{label}_{uuid.uuid4().hex[:10]}"
    admin = _with_path(server_uri, "/postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise ServiceMissing(
            f"PostgreSQL is unreachable at {server_uri} ({exc}). The production tests create a database "
            "there: start one (scripts/services finds or starts one) or point GRAPHRUN_TEST_DATABASE_URI "
            "at a server whose user may create databases."
        ) from exc
    try:
        yield _with_path(server_uri, "/" + name)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def claimed_redis_db(server_uri: str = TEST_REDIS_URI) -> Iterator[str]:
    """An empty Redis database index on the server at ``server_uri`` (other than the one it names, which
    other tests share under key prefixes); yields its URI and flushes it afterwards."""
    base = redis.Redis.from_url(server_uri, socket_connect_timeout=3, socket_timeout=5)
    try:
        answer: dict[Any, Any] = base.config_get("databases")
        databases = int(next(iter(answer.values()), 16))
    except redis.ResponseError:  # CONFIG disabled: the default
        databases = 16
    except (redis.RedisError, OSError) as exc:
        raise ServiceMissing(
            f"Redis is unreachable at {server_uri} ({exc}). The production tests need a real Redis: start "
            "one (scripts/services finds or starts one) or point GRAPHRUN_TEST_REDIS_URI at one."
        ) from exc
    finally:
        base.close()
    shared = urlsplit(server_uri).path.strip("/") or "0"
    token = uuid.uuid4().hex
    for index in range(1, databases):
        if str(index) == shared:
            continue
        uri = _with_path(server_uri, f"/{index}")
        client = redis.Redis.from_url(uri, socket_connect_timeout=3, socket_timeout=5)
        try:
            if not client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_TTL_S):
                continue  # another test run holds it
            if client.dbsize() != 1:  # someone else's data: leave it alone
                client.delete(REDIS_CLAIM_KEY)
                continue
            try:
                yield uri
            finally:
                client.flushdb()
            return
        finally:
            client.close()
    raise ServiceMissing(
        f"no free Redis database on {server_uri}: every index from 1 to {databases - 1} holds keys or is "
        "claimed by another test run. Flush one, or point GRAPHRUN_TEST_REDIS_URI at another Redis."
    )
