import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def run_check(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_check(GATEHOUSE_DEBUG="0", GATEHOUSE_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "GATEHOUSE_SECRET_KEY must be set" in result.stderr


def test_development_mode_generates_a_secret_key_once_and_keeps_it(tmp_path):
    assert run_check(GATEHOUSE_DEBUG="1", GATEHOUSE_VAR_DIR=str(tmp_path)).returncode == 0
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert run_check(GATEHOUSE_DEBUG="1", GATEHOUSE_VAR_DIR=str(tmp_path)).returncode == 0
    assert key_file.read_text() == first


def test_settings_that_would_misbehave_refuse_to_start(tmp_path):
    development = {"GATEHOUSE_DEBUG": "1", "GATEHOUSE_VAR_DIR": str(tmp_path)}
    proxies = run_check(**development, GATEHOUSE_TRUSTED_PROXIES="127.0.0.1,nginx")
    assert proxies.returncode != 0
    assert "GATEHOUSE_TRUSTED_PROXIES" in proxies.stderr
    requeue = run_check(**development, GATEHOUSE_JOB_REQUEUE_SECONDS="30")
    assert requeue.returncode != 0
    assert "GATEHOUSE_JOB_REQUEUE_SECONDS must exceed" in requeue.stderr


def test_urls_written_into_pasted_commands_must_be_plain(tmp_path):
    """The Sign images guide and the bundles' env scripts (sh, PowerShell, cmd) carry these
    URLs: a quote, a space, ``$`` or ``&`` there would be a shell's to read."""
    development = {"GATEHOUSE_DEBUG": "1", "GATEHOUSE_VAR_DIR": str(tmp_path)}
    for name in ("NOTARY_URL", "NOTARY_PUBLIC_URL", "GATEHOUSE_PUBLIC_URL"):
        for url in ("https://notary.example.com&calc", 'https://a"b', "https://$(id)", "ftp://x"):
            refused = run_check(**development, **{name: url})
            assert refused.returncode != 0, (name, url)
            assert f"{name} must be an http:// or https:// URL" in refused.stderr
    accepted = run_check(
        **development,
        NOTARY_URL="http://[::1]:4443",
        NOTARY_PUBLIC_URL="https://notary.example.com:4443/",
        GATEHOUSE_PUBLIC_URL="https://gatehouse.example.com/console",
    )
    assert accepted.returncode == 0, accepted.stderr


def test_directory_settings_that_would_leak_passwords_refuse_to_start(tmp_path):
    development = {"GATEHOUSE_DEBUG": "1", "GATEHOUSE_VAR_DIR": str(tmp_path)}
    production = {
        "GATEHOUSE_DEBUG": "0",
        "GATEHOUSE_VAR_DIR": str(tmp_path),
        "GATEHOUSE_SECRET_KEY": "x" * 50,
        "GATEHOUSE_KEY_ENCRYPTION_KEY": "dGVzdC1zdWl0ZS1vbmx5LWtleS1lbmNyeXB0aW9uLWs",
    }
    refused = {
        "GATEHOUSE_LDAP_URL must be": {**development, "GATEHOUSE_LDAP_URL": "ldapi://x"},
        "GATEHOUSE_LDAP_START_TLS is off": {
            **development,
            "GATEHOUSE_LDAP_URL": "ldap://ldap.example.org",
            "GATEHOUSE_LDAP_START_TLS": "0",
        },
        "GATEHOUSE_LDAP_ALLOW_PLAIN sends passwords in the clear": {
            **production,
            "GATEHOUSE_LDAP_URL": "ldap://ldap.example.org",
            "GATEHOUSE_LDAP_ALLOW_PLAIN": "1",
        },
        "GATEHOUSE_OIDC_ISSUER must be an https:// URL": {
            **production,
            "GATEHOUSE_OIDC_ISSUER": "http://sso.example.org",
            "GATEHOUSE_OIDC_CLIENT_ID": "gatehouse",
            "GATEHOUSE_OIDC_CLIENT_SECRET": "secret",
        },
        "needs GATEHOUSE_OIDC_CLIENT_ID": {
            **development,
            "GATEHOUSE_OIDC_ISSUER": "https://sso.example.org",
        },
    }
    for message, env in refused.items():
        result = run_check(**env)
        assert result.returncode != 0, message
        assert message in result.stderr
    allowed = run_check(
        **development,
        GATEHOUSE_LDAP_URL="ldap://ldap.example.org",
        GATEHOUSE_LDAP_START_TLS="0",
        GATEHOUSE_LDAP_ALLOW_PLAIN="1",
    )
    assert allowed.returncode == 0, allowed.stderr
