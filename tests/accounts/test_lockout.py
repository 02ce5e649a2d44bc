"""Logins are locked out after repeated failures, per account and per address; password
checks are limited per address and minute; token creation is limited per user."""

import base64

import pytest
from rest_framework.test import APIClient

from accounts.services import TooManyTokens, api_token_create
from audit.models import AuditEntry
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def login(username: str, password: str, address: str = "203.0.113.7"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/login/", {"username": username, "password": password}, format="json"
    )


def test_an_account_locks_after_repeated_failures_even_for_the_right_password(alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert login("alice", "wrong").status_code == 401
    locked = login("alice", PASSWORD)
    assert locked.status_code == 429
    assert "try again later" in locked.json()["detail"]
    assert login("alice", PASSWORD, address="198.51.100.1").status_code == 429
    entry = AuditEntry.objects.get(action="login.locked_out")
    assert (entry.target_type, entry.target_id) == ("user", "alice")


def test_an_address_locks_after_failures_across_accounts(alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS = 4
    for name in ("a", "b", "c", "d"):
        login(name, "guess")
    assert login("alice", PASSWORD).status_code == 429
    assert login("alice", PASSWORD, address="198.51.100.1").status_code == 200
    assert AuditEntry.objects.filter(action="login.locked_out", target_type="address").exists()


def test_a_success_clears_the_accounts_failures(alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 3
    login("alice", "wrong")
    login("alice", "wrong")
    assert login("alice", PASSWORD).status_code == 200
    login("alice", "wrong")
    assert login("alice", PASSWORD).status_code == 200


def test_the_console_login_says_when_locked(client, alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    page = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 200
    assert "Too many failed logins" in page.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_checks_are_limited_per_address_right_password_or_not(alice, settings):
    settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = 3
    assert login("alice", "wrong").status_code == 401
    for _ in range(2):
        assert login("alice", PASSWORD).status_code == 200
    throttled = login("alice", PASSWORD)
    assert throttled.status_code == 429
    assert "Too many login attempts from this address" in throttled.json()["detail"]
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert login("alice", PASSWORD, address="198.51.100.1").status_code == 200
    login("alice", PASSWORD)
    entry = AuditEntry.objects.get(action="login.throttled")
    assert (entry.target_type, entry.target_id) == ("address", "203.0.113.7")


def test_the_throttle_counts_every_login_path(client, alice, settings):
    settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = 2
    console = {"username": "alice", "password": PASSWORD}
    assert client.post("/login/", console, REMOTE_ADDR="203.0.113.7").status_code == 302
    client.logout()
    assert login("alice", PASSWORD).status_code == 200
    page = client.post("/login/", console, REMOTE_ADDR="203.0.113.7")
    assert page.status_code == 200
    assert "Too many login attempts from this address" in page.content.decode()
    assert "_auth_user_id" not in client.session


def test_behind_a_proxy_the_forwarded_address_counts(alice, settings):
    settings.GATEHOUSE_BEHIND_PROXY = True
    settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    proxy = "127.0.0.1"

    def through_proxy(client_address: str, password: str):
        return APIClient(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=client_address).post(
            "/api/v1/auth/login/", {"username": "alice", "password": password}, format="json"
        )

    for name in ("a", "b"):
        login(name, "guess", address=proxy)  # not through the proxy: its own address
    # A forged first entry does not count: the proxy appends the address it saw, last.
    assert through_proxy("198.51.100.9, 192.0.2.1", PASSWORD).status_code == 200
    assert AuditEntry.objects.filter(action="login.succeeded").latest("id").address == "192.0.2.1"
    for _ in range(2):
        through_proxy("192.0.2.66", "guess")
    assert through_proxy("192.0.2.66", PASSWORD).status_code == 429
    assert through_proxy("192.0.2.1", PASSWORD).status_code == 200


def test_token_creation_is_limited_per_user(settings):
    settings.GATEHOUSE_TOKENS_PER_HOUR = 2
    user = make_user("ci-bot")
    api_token_create(user=user)
    api_token_create(user=user)
    with pytest.raises(TooManyTokens):
        api_token_create(user=user)
    response = login("ci-bot", PASSWORD)
    assert response.status_code == 429
    assert "too many API tokens" in response.json()["detail"]


def test_notary_token_service_passwords_are_throttled_api_tokens_are_not(client, alice, settings):
    settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = 1
    api_token, _ = api_token_create(user=alice)

    def notary_token(password: str):
        credentials = base64.b64encode(f"alice:{password}".encode()).decode()
        return client.get(
            "/auth/token",
            {"service": settings.GATEHOUSE_NOTARY_SERVICE, "scope": "repository:a/b:pull"},
            HTTP_AUTHORIZATION=f"Basic {credentials}",
        )

    assert notary_token(PASSWORD).status_code == 200
    throttled = notary_token(PASSWORD)
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(throttled["Retry-After"]) >= 1
    assert notary_token(api_token).status_code == 200
