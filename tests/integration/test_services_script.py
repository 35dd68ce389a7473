"""``scripts/services``: the test command finds or starts PostgreSQL, Redis and MongoDB, or says what is
missing.

Each test runs the script as ``scripts/test`` does, with its probes pointed at loopback ports where nothing
listens, so that the machine's own servers are invisible to it: it must then start throwaway servers (and stop
them afterwards), use the ones its variables name, or fail with a message that names the variable to set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pymongo
import pymongo.errors
import pytest
import redis

from tests.harness.ports import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services"


def _env(**overrides: str) -> dict[str, str]:
    """This process's environment without the servers it was given, and with nothing at the usual ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHRUN_TEST_", "GRAPHRUN_SERVICES_"))}
    env["GRAPHRUN_SERVICES_PROBE_PG_PORT"] = str(free_port())
    env["GRAPHRUN_SERVICES_PROBE_REDIS_PORT"] = str(free_port())
    env["GRAPHRUN_SERVICES_PROBE_MONGODB_PORT"] = str(free_port())
    env.update(overrides)
    return env


def _services(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *command],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def _exported(stdout: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in stdout.splitlines())
    return {name: value for name, _, value in pairs if name.startswith("GRAPHRUN_TEST_")}


@pytest.mark.parametrize(
    ("need", "variable", "how"),
    [
        ("postgres", "GRAPHRUN_TEST_DATABASE_URI", "apt-get install postgresql"),
        ("redis", "GRAPHRUN_TEST_REDIS_URI", "apt-get install redis-server"),
        ("redis-stack", "GRAPHRUN_TEST_REDIS_STACK_URI", "Redis 8 or redis-stack-server"),
        ("mongodb", "GRAPHRUN_TEST_MONGODB_URI", "run MongoDB on 127.0.0.1:27017"),
    ],
)
def test_a_server_it_can_neither_find_nor_start_stops_the_run_with_what_to_do(
    tmp_path: Path, need: str, variable: str, how: str
) -> None:
    """No server, binary or download: exit 1 before the command runs, naming the variable and the fix."""
    ran = tmp_path / "command-ran"
    env = _env(
        GRAPHRUN_SERVICES_NEED=need,
        GRAPHRUN_SERVICES_DIR=str(tmp_path / "services"),
        GRAPHRUN_SERVICES_SKIP_SYSTEM_BINARIES="1",
        GRAPHRUN_SERVICES_NO_DOWNLOAD="1",
    )

    done = _services(env, "touch", str(ran))

    assert done.returncode == 1, done.stderr
    assert not ran.exists()
    error = done.stderr.split("services: error: ", 1)[1]
    assert variable in error
    assert how in error


# Run under the started servers: use them, then ask a nested run, which may neither start nor fetch anything.
UNDER_SERVICES = """
set -euo pipefail
env
"$PYTHON" -c "$USE_SERVERS"
GRAPHRUN_SERVICES_SKIP_SYSTEM_BINARIES=1 GRAPHRUN_SERVICES_NO_DOWNLOAD=1 "$SERVICES" env | sed 's/^/nested_/'
"""
USE_SERVERS = """
import os, psycopg, redis
with psycopg.connect(os.environ["GRAPHRUN_TEST_DATABASE_URI"]) as conn:
    print("database", conn.execute("select current_database()").fetchone()[0])
redis.Redis.from_url(os.environ["GRAPHRUN_TEST_REDIS_URI"]).set("graphrun-services-test", 1, ex=5)
"""


@dataclass
class UnderServices:
    """A run of ``UNDER_SERVICES``: its environment, its output, and what it and the nested run exported."""

    env: dict[str, str]
    stdout: str
    stderr: str
    exported: dict[str, str]
    nested: dict[str, str]


def _under_services(need: str, use_servers: str) -> UnderServices:
    env = _env(
        GRAPHRUN_SERVICES_NEED=need, PYTHON=sys.executable, USE_SERVERS=use_servers, SERVICES=str(SCRIPT)
    )

    done = _services(env, "bash", "-c", UNDER_SERVICES)

    assert done.returncode == 0, done.stderr
    nested_lines = (
        line.removeprefix("nested_") for line in done.stdout.splitlines() if line.startswith("nested_")
    )
    nested = _exported("\n".join(nested_lines))
    return UnderServices(env, done.stdout, done.stderr, _exported(done.stdout), nested)


def test_starts_throwaway_servers_when_none_answer_and_stops_them_after() -> None:
    """The servers it starts serve the command and a nested run uses them; they are gone after the command."""
    run = _under_services("postgres redis", USE_SERVERS)
    env, exported, nested = run.env, run.exported, run.nested

    assert run.stderr.count("started a throwaway server") == 2
    database, plain = exported["GRAPHRUN_TEST_DATABASE_URI"], exported["GRAPHRUN_TEST_REDIS_URI"]
    for probed in (env["GRAPHRUN_SERVICES_PROBE_PG_PORT"], env["GRAPHRUN_SERVICES_PROBE_REDIS_PORT"]):
        assert f":{probed}/" not in database + plain
    name = database.rsplit("/", 1)[1]
    assert name.startswith("graphrun_test_")
    assert f"database {name}" in run.stdout
    assert nested["GRAPHRUN_TEST_REDIS_URI"] == plain
    assert nested["GRAPHRUN_TEST_DATABASE_URI"].rsplit("/", 1)[0] == database.rsplit("/", 1)[0]

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database, connect_timeout=3).close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(plain, socket_connect_timeout=3).ping()


USE_MONGODB = """
import os, pymongo
with pymongo.MongoClient(os.environ["GRAPHRUN_TEST_MONGODB_URI"], serverSelectionTimeoutMS=5000) as client:
    database = client.get_default_database()
    database["services_test"].insert_one({"k": 1})
    print("mongodb", database.name, database["services_test"].count_documents({}))
"""


def test_starts_secantusdb_when_no_mongodb_answers_and_stops_it_after() -> None:
    """No MongoDB answers: SecantusDB from PyPI serves the command (a database of the run's own) and a nested
    run; it says which server it used, and the server is gone after the command."""
    run = _under_services("mongodb", USE_MONGODB)

    assert "services: SecantusDB 0.7.0b3 (MongoDB-compatible, reports MongoDB " in run.stderr
    assert run.stderr.count("started a throwaway server") == 1
    uri = run.exported["GRAPHRUN_TEST_MONGODB_URI"]
    name = uri.rsplit("/", 1)[1]
    assert name.startswith("graphrun_test_")
    assert f":{run.env['GRAPHRUN_SERVICES_PROBE_MONGODB_PORT']}/" not in uri
    assert f"mongodb {name} 1" in run.stdout
    assert run.nested["GRAPHRUN_TEST_MONGODB_URI"] == uri

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    with client, pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
        client.admin.command("ping")


def test_the_database_it_creates_on_a_given_server_is_dropped_after(tmp_path: Path) -> None:
    """The server may be the user's own (GRAPHRUN_TEST_DATABASE_URI, or one on 127.0.0.1:5432): the
    database made for the run is gone after it."""
    given = os.environ.get("GRAPHRUN_TEST_DATABASE_URI")
    if not given:
        pytest.fail("GRAPHRUN_TEST_DATABASE_URI is not set: run the tests through scripts/services")
    env = _env(
        GRAPHRUN_SERVICES_NEED="postgres",
        GRAPHRUN_SERVICES_DIR=str(tmp_path / "services"),
        GRAPHRUN_TEST_DATABASE_URI=given,
        PYTHON=sys.executable,
    )
    used = (
        'import os, psycopg; psycopg.connect(os.environ["GRAPHRUN_TEST_DATABASE_URI"]).close(); print("used")'
    )

    done = _services(env, "bash", "-c", 'env && "$PYTHON" -c "$0"', used)

    assert done.returncode == 0, done.stderr
    assert "used" in done.stdout.splitlines()
    created = _exported(done.stdout)["GRAPHRUN_TEST_DATABASE_URI"].rsplit("/", 1)[1]
    assert created.startswith("graphrun_test_")
    assert created != given.rsplit("/", 1)[1]
    with psycopg.connect(given) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (created,)).fetchone()
    assert left == (0,), f"database {created} was left on the server"


def test_the_mongodb_database_it_names_on_a_given_server_is_dropped_after(tmp_path: Path) -> None:
    """A MongoDB URI that names no database gets one of the run's own, gone from the server after the run."""
    outer = os.environ.get("GRAPHRUN_TEST_MONGODB_URI")
    if not outer:
        pytest.fail("GRAPHRUN_TEST_MONGODB_URI is not set: run the tests through scripts/services")
    given = outer.rsplit("/", 1)[0] + "/"
    env = _env(
        GRAPHRUN_SERVICES_NEED="mongodb",
        GRAPHRUN_SERVICES_DIR=str(tmp_path / "services"),
        GRAPHRUN_TEST_MONGODB_URI=given,
        PYTHON=sys.executable,
        USE_SERVERS=USE_MONGODB,
    )

    done = _services(env, "bash", "-c", 'env && "$PYTHON" -c "$USE_SERVERS"')

    assert done.returncode == 0, done.stderr
    created = _exported(done.stdout)["GRAPHRUN_TEST_MONGODB_URI"].rsplit("/", 1)[1]
    assert created.startswith("graphrun_test_")
    assert f"mongodb {created} 1" in done.stdout
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(given, serverSelectionTimeoutMS=5000)
    with client:
        assert created not in client.list_database_names(), f"database {created} was left on the server"
