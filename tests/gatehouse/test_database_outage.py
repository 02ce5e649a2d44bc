"""PostgreSQL unavailable for a moment: the API and the console answer 503, not 500, and
succeed once it is back. A real outage: the live server's database refuses connections."""

import json
import logging
import urllib.error
import urllib.request

import psycopg
from django.db import connection

from tests.conftest import require

MESSAGE = "The database is unavailable; try again shortly."


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def maintenance_connection() -> psycopg.Connection:
    """A connection to the ``postgres`` database of the test database's server."""
    params = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        autocommit=True,
    )


def set_allow_connections(admin: psycopg.Connection, database: str, allow: bool) -> None:
    name = psycopg.sql.Identifier(database)
    value = psycopg.sql.SQL("true" if allow else "false")
    admin.execute(psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(name, value))


def test_postgresql_outage_answers_503_and_recovers(live_server, transactional_db, caplog):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    from django.test import Client

    from accounts.services import api_token_create
    from tests.factories import make_user

    admin_user = make_user("root", is_admin=True, full_name="Root Admin")
    raw_token, _ = api_token_create(user=admin_user)
    browser = Client()
    browser.force_login(admin_user)
    session = browser.cookies["sessionid"].value

    api_url = f"{live_server.url}/api/v1/users/"
    console_url = f"{live_server.url}/"
    bearer = {"Authorization": f"Bearer {raw_token}"}
    cookie = {"Cookie": f"sessionid={session}"}

    def assert_up() -> None:
        status, _, body = fetch(api_url, **bearer)
        assert status == 200, body
        assert "root" in body
        status, _, body = fetch(console_url, **cookie)
        assert status == 200, body[:500]

    assert_up()

    database = connection.settings_dict["NAME"]
    with maintenance_connection() as admin:
        try:
            set_allow_connections(admin, database, allow=False)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )
            with caplog.at_level(logging.WARNING, logger="gatehouse.database"):
                status, headers, body = fetch(api_url, **bearer)
                assert status == 503, body
                assert json.loads(body) == {"detail": MESSAGE}
                assert headers["Retry-After"] == "5"

                status, headers, body = fetch(console_url, **cookie)
                assert status == 503, body[:500]
                assert MESSAGE in body
                assert headers["Retry-After"] == "5"
                assert "text/html" in headers["Content-Type"]

            warnings = [r for r in caplog.records if r.name == "gatehouse.database"]
            assert len(warnings) == 2
            assert all(r.levelno == logging.WARNING for r in warnings)
            for record in warnings:
                line = record.getMessage()
                assert "OperationalError" in line
                assert database not in line
                assert "postgres://" not in line
        finally:
            set_allow_connections(admin, database, allow=True)
            # This thread's connection was terminated too: the next query opens a new one.
            connection.close()

    assert_up()


def test_other_errors_stay_500(rf, db):
    """Only a database that cannot be reached is a 503: any other error is left alone."""
    from gatehouse.middleware import DatabaseUnavailableMiddleware

    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    request = rf.get("/")
    assert middleware.process_exception(request, RuntimeError("boom")) is None
    assert middleware.process_exception(request, ValueError("boom")) is None

    from django.db import IntegrityError

    assert middleware.process_exception(request, IntegrityError("dup")) is None

    from gatehouse.api import exception_handler

    assert exception_handler(RuntimeError("boom"), {"request": request}) is None
