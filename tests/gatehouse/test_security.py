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
