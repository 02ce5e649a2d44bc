"""Property-based fuzz of ``/api/v1/`` from its own OpenAPI schema (schemathesis, WSGI mode).

Every operation is called as an admin with a bearer token, with data generated from the
schema. No answer may be a 5xx, except a 503 that says Notary is unreachable (``NOTARY_URL``
points at a closed port); answers must match the schema's content types and bodies where it
documents them.
"""

import socket

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from gatehouse.wsgi import application

ADMIN = "fuzzadmin"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def in_test_transaction():
    """Calls go straight to the WSGI application, which closes "old" connections at each
    request's start and end; inside the test's transaction that would close this test's
    connection. Django's test client turns that off the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db, settings, in_test_transaction):
    from accounts.services import api_token_create
    from tests.factories import make_user

    settings.NOTARY_URL = f"http://127.0.0.1:{closed_port()}"
    settings.NOTARY_TIMEOUT = 1.0
    raw_token, _ = api_token_create(user=make_user(ADMIN, is_admin=True))
    return raw_token


def not_a_server_error(ctx, response, case) -> None:
    """No 5xx; a 503 only when it says Notary (not configured or unreachable) is the cause."""
    if response.status_code < 500:
        return
    body = response.text
    if response.status_code == 503 and "notary" in body.lower():
        return
    raise AssertionError(
        f"{case.method} {case.formatted_path} answered {response.status_code}\n"
        f"query={case.query!r} body={case.body!r}\nresponse: {body[:2000]}"
    )


# Loaded at collection (pytest-django has set Django up): serving the schema reads no data.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application).exclude(
    # Revokes the token this test authenticates with.
    path="/api/v1/auth/logout/",
)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_without_server_errors(case, admin_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_token}"},
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
    )
