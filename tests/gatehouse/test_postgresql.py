"""Gatehouse's PostgreSQL connections: the per-request health check sends nothing while the
connection is healthy and replaces one the server has ended before a query fails on it; a
statement run again and again is prepared, unless turned off for a pooler, and a prepared
statement outlives another process changing the schema."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.db import OperationalError, connections

from devtools.notary import LOCAL_POSTGRES_URL, postgres_answers
from gatehouse.postgresql.base import DatabaseWrapper
from tests.conftest import require


@pytest.fixture
def server_url() -> str:
    url = f"{LOCAL_POSTGRES_URL}/postgres"
    require(postgres_answers(LOCAL_POSTGRES_URL), f"PostgreSQL at {LOCAL_POSTGRES_URL}")
    return url


@pytest.fixture
def kept_connection(server_url, django_db_blocker):
    """A connection as a web request keeps it between requests (health checks on, statements
    prepared as Gatehouse's settings have them), to the server itself rather than the test
    database, which a test transaction would hold."""
    settings = dj_database_url.parse(server_url, conn_max_age=60, conn_health_checks=True)
    settings["ENGINE"] = "gatehouse.postgresql"
    settings["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
    configured = connections.configure_settings({"default": settings})["default"]
    wrapper = DatabaseWrapper(configured, alias="health-check-test")
    with django_db_blocker.unblock():
        wrapper.ensure_connection()
        try:
            yield wrapper
        finally:
            wrapper.close()


def backend_pid(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_statement_of(server_url: str, pid: int) -> str:
    with psycopg.connect(server_url, autocommit=True) as observer:
        row = observer.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    return row[0]


def backend_exists(server_url: str, pid: int) -> bool:
    with psycopg.connect(server_url, autocommit=True) as observer:
        row = observer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row is not None


def next_request(wrapper: DatabaseWrapper) -> None:
    """What Django does between two requests, then the next request's first query's check."""
    wrapper.close_if_unusable_or_obsolete()
    wrapper.close_if_health_check_failed()


def test_a_healthy_connection_is_kept_without_a_statement(kept_connection, server_url):
    pid = backend_pid(kept_connection)

    next_request(kept_connection)

    assert kept_connection.connection is not None
    assert last_statement_of(server_url, pid) == "SELECT pg_backend_pid()"
    assert backend_pid(kept_connection) == pid


def test_a_connection_the_server_ended_is_replaced_before_the_next_query(
    kept_connection, server_url
):
    pid = backend_pid(kept_connection)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and backend_exists(server_url, pid):
        time.sleep(0.02)

    next_request(kept_connection)

    assert kept_connection.connection is None
    new_pid = backend_pid(kept_connection)
    assert new_pid != pid


COUNT_PREPARED = """
from django.db import connection
with connection.cursor() as cursor:
    for _ in range(6):
        cursor.execute("SELECT %s::int", [1])
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    print(cursor.fetchone()[0])
"""


def prepared_after_six_runs(server_url: str, tmp_path: Path, **env: str) -> int:
    """How many statements a fresh process's connection holds prepared after running one
    statement six times, under Gatehouse's settings and ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", COUNT_PREPARED],
        cwd=Path(__file__).resolve().parents[2],
        env={
            **clean,
            "DATABASE_URL": server_url,
            "GATEHOUSE_DEBUG": "1",
            "GATEHOUSE_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip())


def test_a_statement_run_again_and_again_is_prepared_unless_turned_off(server_url, tmp_path):
    assert prepared_after_six_runs(server_url, tmp_path) == 1
    assert prepared_after_six_runs(server_url, tmp_path, GATEHOUSE_DB_PREPARED_STATEMENTS="0") == 0


@pytest.fixture
def probe_table(server_url):
    """A table another process will change the type of a column of, as a migration would."""
    name = f"gatehouse_prepared_probe_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, label varchar(10))")
        admin.execute(f"INSERT INTO {name} VALUES (1, 'first')")  # noqa: S608
        try:
            yield name
        finally:
            admin.execute(f"DROP TABLE {name}")


def widen_label(server_url: str, table: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as migration:
        migration.execute(f"ALTER TABLE {table} ALTER COLUMN label TYPE varchar(600)")


def read_label(wrapper: DatabaseWrapper, table: str) -> str:
    with wrapper.cursor() as cursor:
        cursor.execute(f"SELECT label FROM {table} WHERE id = %s", [1])  # noqa: S608
        return cursor.fetchone()[0]


def test_a_prepared_statement_outlives_a_migration_made_elsewhere(
    kept_connection, server_url, probe_table
):
    for _ in range(6):
        read_label(kept_connection, probe_table)
    widen_label(server_url, probe_table)

    assert read_label(kept_connection, probe_table) == "first"

    next_request(kept_connection)
    assert kept_connection.connection is None  # replaced, with what it had prepared
    for _ in range(6):
        assert read_label(kept_connection, probe_table) == "first"


def test_in_a_transaction_it_is_a_try_again_and_the_connection_is_replaced(
    kept_connection, server_url, probe_table
):
    for _ in range(6):
        read_label(kept_connection, probe_table)
    widen_label(server_url, probe_table)

    kept_connection.set_autocommit(False)
    with pytest.raises(OperationalError, match="try again"):
        read_label(kept_connection, probe_table)
    kept_connection.rollback()
    kept_connection.set_autocommit(True)

    next_request(kept_connection)
    assert kept_connection.connection is None
    assert read_label(kept_connection, probe_table) == "first"
