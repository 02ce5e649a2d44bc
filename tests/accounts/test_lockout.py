"""Logins are locked out after repeated failures, per account and per address; token
creation is limited per user."""

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
