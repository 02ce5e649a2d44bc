"""Security headers, the production settings' deployment check, and a CSP-clean API docs page."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "GATEHOUSE_DEBUG": "0",
    "GATEHOUSE_SECRET_KEY": secrets.token_urlsafe(50),
    "GATEHOUSE_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    "GATEHOUSE_ALLOWED_HOSTS": "gatehouse.example.com",
    "GATEHOUSE_SSL_REDIRECT": "1",
    "GATEHOUSE_BEHIND_PROXY": "1",
    "GATEHOUSE_CSRF_TRUSTED_ORIGINS": "https://gatehouse.example.com",
}


def test_the_documented_production_settings_pass_check_deploy(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**env, **PRODUCTION, "GATEHOUSE_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_pages_carry_the_security_headers(client):
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_no_page_has_inline_script(client, admin):
    client.force_login(admin)
    for path in (
        "/login/",
        "/",
        "/users/",
        "/teams/",
        "/repositories/",
        "/content-trust/",
        "/profile/",
        "/api/v1/docs/",
    ):
        page = client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
        assert not re.search(r"\son[a-z]+=", page), path
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


# --- Cache-Control: no-store for whatever answers a signed-in user ----------------------


@pytest.mark.django_db
def test_console_pages_of_a_session_are_no_store(client, admin):
    client.force_login(admin)
    for path in ("/", "/users/", "/profile/", "/content-trust/", "/repositories/", "/audit/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "no-store", path
    response = client.get("/login/")  # signed in already: sent on, never cached (Django's)
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_api_answers_are_no_store_with_a_session_and_with_a_bearer_token(client, api, admin):
    client.force_login(admin)
    assert client.get("/api/v1/users/")["Cache-Control"] == "no-store"
    assert api(admin).get("/api/v1/users/")["Cache-Control"] == "no-store"
    assert api(admin).get("/api/v1/teams/")["Cache-Control"] == "no-store"
    # Errors answered to someone signed in too.
    assert api(admin).get("/api/v1/users/ghost/")["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_a_stricter_cache_control_of_the_answer_is_kept(api, admin):
    response = api(admin).get("/api/v1/bundles/ca.pem")
    assert response["Cache-Control"] == "no-store"
    bundle = api(admin).post("/api/v1/bundles/")
    assert bundle["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_anonymous_answers_keep_their_own_cache_headers(client):
    assert "Cache-Control" not in client.get("/api/v1/schema/")
    assert "Cache-Control" not in client.get("/api/v1/docs/")
    login = client.get("/login/")  # Django's own, kept as it is
    assert login["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    health = client.get("/healthz")
    assert health["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


@pytest.mark.django_db
def test_healthz_is_answered_as_it_was_to_a_signed_in_browser(client, admin):
    client.force_login(admin)
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
