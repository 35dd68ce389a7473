"""PostgreSQL for the contract suite: a fresh schema per test on the test database.

``GRAPHRUN_TEST_DATABASE_URI`` names the database (``scripts/services`` finds or starts one and sets it);
without it, the local default below is tried. An unreachable database fails the test with a message
that says what to provide: the suite never skips PostgreSQL silently.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URI = "postgresql://postgres@127.0.0.1:5432/postgres"
URI_ENV = "GRAPHRUN_TEST_DATABASE_URI"


def test_database_uri() -> str:
    return os.environ.get(URI_ENV) or DEFAULT_URI


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    """A connection string whose ``search_path`` is a new, empty schema; the schema is dropped after."""
    base = test_database_uri()
    schema = f"graphrun_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await psycopg.AsyncConnection.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {base}: {exc}\n"
            f"Run the suite with scripts/test (it finds or starts PostgreSQL), or set {URI_ENV}.",
            pytrace=False,
        )
    async with admin:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        params = conninfo_to_dict(base)
        params["options"] = f"-c search_path={schema}"
        try:
            yield make_conninfo(**{k: str(v) for k, v in params.items()})
        finally:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
