"""/healthz and /readyz: no login, JSON, each readiness check reported, never a 500."""

import socket

import pytest
from django.db import OperationalError, connection


def closed_port() -> int:
    """A port nothing listens on: bound for a moment, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def notary_up(settings, notary_server):
    settings.NOTARY_URL = notary_server.url
    return notary_server


def test_healthz_answers_without_touching_the_database(client):
    # No db fixture: pytest-django makes any database access an error.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"


def test_healthz_needs_no_login_and_no_csrf(client):
    csrf_client = type(client)(enforce_csrf_checks=True)
    assert csrf_client.get("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405  # only GET and HEAD; still not a 500


@pytest.mark.django_db
@pytest.mark.notary
def test_readyz_is_ok_when_database_broker_and_notary_answer(client, notary_up):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "notary"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["ms"], float)
        assert "error" not in check


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_notary(client, settings):
    settings.NOTARY_URL = f"http://127.0.0.1:{closed_port()}"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["notary"]["ok"] is False
    assert "refused" in body["checks"]["notary"]["error"].lower()
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_reports_notary_not_configured_as_unavailable(client, settings):
    settings.NOTARY_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["notary"] == {
        "ok": False,
        "error": "not configured: NOTARY_URL is not set",
        "ms": response.json()["checks"]["notary"]["ms"],
    }


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker_without_its_credentials(client, settings):
    settings.CELERY_BROKER_URL = f"redis://gatehouse:s3cret-pw@127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert "s3cret-pw" not in response.content.decode()
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_reports_a_missing_filesystem_broker_folder(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    missing = str(tmp_path / "gone")
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": missing,
        "data_folder_out": missing,
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.mark.django_db
def test_readyz_reports_a_database_failure(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection to server failed: the database system is shutting down")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {
        "ok": False,
        "error": "connection to server failed: the database system is shutting down",
        "ms": body["checks"]["database"]["ms"],
    }
