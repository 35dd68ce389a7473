"""Production mode with ``DATABASE_URI`` pointing at PgBouncer in transaction pooling mode, the usual way to
put many workers on one PostgreSQL, and ``GRAPHRUN_DATABASE_DIRECT_URI`` at PostgreSQL itself.

PgBouncer (Debian's ``pgbouncer``, found or installed by ``scripts/services``) is started by the test in front
of a fresh database, with fewer server connections than graphrun's pools hold clients, so server connections
change hands between transactions. It refuses to run as root: as root it runs as the ``postgres`` user (or
``nobody``). The test is skipped, saying why, where there is no pgbouncer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.harness.cluster import CONFIG, Cluster, Procs, claimed_redis_db, fresh_database, production_env
from tests.harness.ports import free_port
from tests.harness.waiting import PROCESSES, eventually
from tests.production._chat import chat_input, check_chat_messages

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(600)]

# Server connections PgBouncer keeps per database and user: far fewer than the clients graphrun's pools
# open (three pools of up to 8 per process), so one client's transactions meet other server connections.
SERVER_POOL_SIZE = 4
RUNS = 12
STEPS = 3


def _pgbouncer_binary() -> str | None:
    for candidate in (
        os.environ.get("GRAPHRUN_TEST_PGBOUNCER"),
        "/usr/sbin/pgbouncer",
        shutil.which("pgbouncer"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class PgBouncer:
    uri: str  # through PgBouncer
    direct_uri: str  # PostgreSQL itself


@contextlib.contextmanager
def _pgbouncer(procs: Procs, database_uri: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling mode on a free loopback port, in front of ``database_uri``."""
    binary = _pgbouncer_binary()
    if binary is None:
        pytest.skip(
            "no pgbouncer (scripts/services installs Debian's as root; else apt-get install pgbouncer or set "
            "GRAPHRUN_TEST_PGBOUNCER): this test puts DATABASE_URI behind a PgBouncer of its own"
        )
    params = conninfo_to_dict(database_uri)
    dbname = str(params["dbname"])
    target = " ".join(
        f"{key}={params[key]}" for key in ("host", "port", "user", "password") if params.get(key) is not None
    )
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="graphrun-pgbouncer-"))  # reachable by the user it runs as
    (home / "pgbouncer.ini").write_text(
        f"""[databases]
{dbname} = {target} dbname={dbname}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {SERVER_POOL_SIZE}
max_client_conn = 500
logfile = {home}/pgbouncer.log
""",
        encoding="utf-8",
    )
    argv = [binary, str(home / "pgbouncer.ini")]
    if os.geteuid() == 0:  # "PgBouncer should not run as root"
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        entry = pwd.getpwnam(user)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        argv = ["runuser", "-u", user, "--", *argv]
    proc = procs.add("pgbouncer", argv, dict(os.environ))
    proc.start()
    uri = f"postgresql://{params.get('user', 'postgres')}@127.0.0.1:{port}/{dbname}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(uri, connect_timeout=2, prepare_threshold=None) as conn:
                conn.execute("SELECT 1")
            break
        except psycopg.OperationalError:
            if not proc.alive or time.monotonic() > deadline:
                log = home / "pgbouncer.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"pgbouncer did not start\n{proc.logs()}\n{text[-3000:]}") from None
            time.sleep(0.1)
    try:
        yield PgBouncer(uri=uri, direct_uri=database_uri)
    finally:
        proc.stop(kill=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def bouncer(procs: Procs) -> Iterator[PgBouncer]:
    with fresh_database("pgbouncer") as database_uri, _pgbouncer(procs, database_uri) as bouncer:
        yield bouncer


def test_the_pgbouncer_pools_in_transaction_mode(bouncer: PgBouncer) -> None:
    """The set-up reproduces what broke every run: psycopg's prepared statements (prepared on a statement's
    fifth use) meet another client's on a shared server connection, or are missing on the next one."""
    with contextlib.ExitStack() as stack:
        conns = [stack.enter_context(psycopg.connect(bouncer.uri, autocommit=True)) for _ in range(2)]

        def both_ten_times() -> None:
            for _ in range(10):
                for conn in conns:
                    conn.execute("SELECT 1 WHERE %s::int = 1", (1,))

        broken = (psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)
        with pytest.raises(broken, match="_pg3_0"):
            both_ten_times()


async def test_runs_succeed_with_database_uri_through_pgbouncer(procs: Procs, bouncer: PgBouncer) -> None:
    """``graphrun migrate``, an API and two workers with ``DATABASE_URI`` through PgBouncer: every run
    succeeds with its steps once in its thread's state; the workers LISTEN on the direct URI; afterwards no
    server connection is left in a transaction and no more are open than PgBouncer's pool and the direct
    connections (nothing leaks)."""
    with claimed_redis_db() as redis_uri:
        env = production_env(bouncer.uri, redis_uri, GRAPHRUN_DATABASE_DIRECT_URI=bouncer.direct_uri)
        cluster = Cluster(procs, env, CONFIG)
        cluster.migrate()
        cluster.add_api()
        for _ in range(2):
            cluster.add_worker()
        cluster.ensure_running()
        async with cluster.client(0) as client:
            threads = [(await client.threads.create())["thread_id"] for _ in range(RUNS)]
            runs = await asyncio.gather(
                *(
                    client.runs.wait(t, "chat", input=chat_input(f"run {i}", STEPS, 0.05), raise_error=False)
                    for i, t in enumerate(threads)
                )
            )
            for i, thread_id in enumerate(threads):
                check_chat_messages(runs[i], f"run {i}", STEPS)
                listed = await client.runs.list(thread_id)
                assert [r["status"] for r in listed] == ["success"], listed

        with psycopg.connect(bouncer.direct_uri, autocommit=True) as admin:

            async def backends() -> list[tuple[str, str]]:
                rows = admin.execute(
                    "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchall()
                return [(str(state), str(query)) for state, query in rows]

            listening = [q for _, q in await backends() if q.startswith("LISTEN")]
            assert len(listening) == 2, f"one LISTEN per worker on the direct URI: {await backends()}"
            settled = await eventually(
                backends,
                lambda rows: all(state == "idle" for state, _ in rows),
                what="idle backends",
                **PROCESSES,
            )
            # PgBouncer's server connections, and per worker its LISTEN connection.
            assert len(settled) <= SERVER_POOL_SIZE + 2, settled
        for proc in cluster.apis + cluster.workers:
            assert "DuplicatePreparedStatement" not in proc.logs()
            assert "InvalidSqlStatementName" not in proc.logs()
