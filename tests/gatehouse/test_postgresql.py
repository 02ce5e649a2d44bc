"""The per-request health check of a kept PostgreSQL connection: nothing is sent while the
connection is healthy, and one the server has ended is replaced before a query fails on it."""

import time

import dj_database_url
import psycopg
import pytest
from django.db import connections

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
    """A connection as a web request keeps it between requests (health checks on), to the
    server itself rather than the test database, which a test transaction would hold."""
    settings = dj_database_url.parse(server_url, conn_max_age=60, conn_health_checks=True)
    settings["ENGINE"] = "gatehouse.postgresql"
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
