"""Logins are locked out after repeated failures, per account and per address; password
checks are limited per address and minute; token creation is limited per user."""

import base64
import datetime as dt
import ipaddress
import json
import time
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from accounts.services import TooManyTokens, api_token_create
from audit.models import AuditEntry
from devtools.ports import free_port
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def mid_minute(monkeypatch):
    """The per-minute counts of these tests all fall in one minute."""
    frozen = time.time() // 60 * 60 + 30
    monkeypatch.setattr("accounts.services.time", SimpleNamespace(time=lambda: frozen))


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
    assert locked.json()["detail"] == (
        "Too many failed logins for this account or address. Try again in 15 minutes."
    )
    assert 840 < int(locked["Retry-After"]) <= 900
    assert login("alice", PASSWORD, address="198.51.100.1").status_code == 429
    entry = AuditEntry.objects.get(action="login.locked_out")
    assert (entry.target_type, entry.target_id) == ("user", "alice")


def test_a_spelling_that_lowers_differently_is_locked_out_with_the_account(alice, settings):
    """Python lowers ``İ`` to ``i`` plus a combining dot, PostgreSQL to ``i``: the lookup
    finds alice either way, so the lock must hold either way."""
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert login("alice", "wrong").status_code == 401
    assert login("al\u0130ce", PASSWORD, address="198.51.100.2").status_code != 200
    assert login("alice", PASSWORD, address="198.51.100.3").status_code == 429


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


def test_behind_a_trusted_proxy_the_forwarded_address_counts(alice, settings):
    settings.GATEHOUSE_TRUSTED_PROXIES = [ipaddress.ip_network("127.0.0.1/32")]
    settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    proxy = "127.0.0.1"

    def through_proxy(client_address: str, password: str):
        return APIClient(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=client_address).post(
            "/api/v1/auth/login/", {"username": "alice", "password": password}, format="json"
        )

    for name in ("a", "b"):
        login(name, "guess", address=proxy)  # the proxy's own address is locked out ...
    # ... not its clients; and a forged first entry does not count.
    assert through_proxy("198.51.100.9, 192.0.2.1", PASSWORD).status_code == 200
    assert AuditEntry.objects.filter(action="login.succeeded").latest("id").address == "192.0.2.1"
    for _ in range(2):
        through_proxy("192.0.2.66", "guess")
    assert through_proxy("192.0.2.66", PASSWORD).status_code == 429
    assert through_proxy("192.0.2.1", PASSWORD).status_code == 200


def test_a_client_cannot_name_its_own_address(alice, settings):
    settings.GATEHOUSE_TRUSTED_PROXIES = []
    settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    for victim in ("192.0.2.1", "192.0.2.2"):
        APIClient(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=victim).post(
            "/api/v1/auth/login/", {"username": "x", "password": "guess"}, format="json"
        )
    assert login("alice", PASSWORD, address="192.0.2.1").status_code == 200
    assert login("alice", PASSWORD, address="203.0.113.7").status_code == 429


def test_an_ipv6_host_is_locked_out_by_its_64(alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    login("a", "guess", address="2001:db8:1:2::a")
    login("b", "guess", address="2001:db8:1:2::b")
    assert login("alice", PASSWORD, address="2001:db8:1:2::c").status_code == 429
    assert login("alice", PASSWORD, address="2001:db8:1:3::c").status_code == 200


def test_logins_go_on_when_the_cache_is_unreachable(alice, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = 1
    for _ in range(2):
        assert login("alice", PASSWORD).status_code == 200
    assert "password checks not counted: the cache is unreachable" in caplog.text


def test_changing_ones_own_password_counts_as_a_password_check(api, alice, settings):
    settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = 1
    client = api(alice)
    wrong = {"old_password": "not-it", "new_password": "a-Brand-new-passw0rd"}
    first = client.post("/api/v1/users/alice/password/", wrong, format="json")
    assert first.status_code == 400
    second = client.post("/api/v1/users/alice/password/", wrong, format="json")
    assert second.status_code == 429
    assert "Too many login attempts from this address" in second.json()["detail"]
    assert AuditEntry.objects.filter(action="login.throttled").count() == 1


def test_the_console_password_form_says_when_throttled(client, alice, settings):
    settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = 1
    client.force_login(alice)
    form = {
        "old_password": "not-it",
        "new_password": "a-Brand-new-passw0rd",
        "new_password_confirm": "a-Brand-new-passw0rd",
    }
    client.post("/profile/", form)
    page = client.post("/profile/", form)
    assert page.status_code == 200
    assert "Too many login attempts from this address" in page.content.decode()


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


# --- Changing one's own password proves a password: it counts as a login ----------------


def test_a_wrong_old_password_is_a_failed_login_that_locks_out(api, alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 3
    client = api(alice)
    wrong = {"old_password": "Not-It-0ld-secret", "new_password": "a-Brand-new-passw0rd"}
    for _ in range(3):
        response = client.post("/api/v1/users/alice/password/", wrong, format="json")
        assert response.status_code == 400
        assert "old_password" in response.json()
    right = {"old_password": PASSWORD, "new_password": "a-Brand-new-passw0rd"}
    locked = client.post("/api/v1/users/alice/password/", right, format="json")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.json()["detail"]
    assert int(locked["Retry-After"]) > 0
    assert login("alice", PASSWORD).status_code == 429  # the account is locked everywhere
    failed = AuditEntry.objects.filter(action="login.failed", target_id="alice")
    assert [(e.actor_name, e.after) for e in failed] == [("alice", {"via": "password_change"})] * 3
    assert AuditEntry.objects.filter(action="login.locked_out", target_id="alice").count() == 1
    recorded = json.dumps(list(AuditEntry.objects.values("before", "after")))
    assert "Not-It-0ld-secret" not in recorded
    assert "a-Brand-new-passw0rd" not in recorded


def test_failed_logins_and_wrong_old_passwords_count_together(api, alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    login("alice", "wrong")
    wrong = {"old_password": "not-it", "new_password": "a-Brand-new-passw0rd"}
    assert api(alice).post("/api/v1/users/alice/password/", wrong, format="json").status_code == 400
    assert login("alice", PASSWORD).status_code == 429


def test_the_right_old_password_clears_the_failures(api, alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    login("alice", "wrong")
    right = {"old_password": PASSWORD, "new_password": "a-Brand-new-passw0rd"}
    assert api(alice).post("/api/v1/users/alice/password/", right, format="json").status_code == 204
    login("alice", "wrong")
    assert login("alice", "a-Brand-new-passw0rd").status_code == 200


def test_the_console_password_form_counts_and_says_when_locked(client, alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    client.force_login(alice)
    form = {
        "old_password": "not-it",
        "new_password": "a-Brand-new-passw0rd",
        "new_password_confirm": "a-Brand-new-passw0rd",
    }
    for _ in range(2):
        assert "The current password is not correct." in client.post("/profile/", form).text
    page = client.post("/profile/", {**form, "old_password": PASSWORD})
    assert "Too many failed logins for this account or address. Try again in 15 minutes." in (
        page.text
    )
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert AuditEntry.objects.filter(action="login.failed", target_id="alice").count() == 2


def test_an_admin_setting_a_password_proves_nothing_and_counts_nothing(api, admin, alice):
    body = {"new_password": "a-Brand-new-passw0rd"}
    assert api(admin).post("/api/v1/users/alice/password/", body, format="json").status_code == 204
    assert not AuditEntry.objects.filter(action="login.failed").exists()


# --- How long, who is locked, and unlocking ------------------------------------------------


def test_the_lockout_says_in_how_many_minutes(alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 1
    settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS = 61
    login("alice", "wrong")
    locked = login("alice", PASSWORD)
    assert locked.json()["detail"].endswith("Try again in 2 minutes.")
    assert 1 <= int(locked["Retry-After"]) <= 61


def test_the_console_login_says_for_how_long(client, alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 1
    settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS = 60
    client.post("/login/", {"username": "alice", "password": "wrong"})
    page = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert "Try again in 1 minute." in page.text


@pytest.fixture
def alice_locked(alice, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    for _ in range(2):
        login("alice", "wrong")
    return alice


def test_admins_see_which_accounts_are_locked_and_until_when(api, admin, alice_locked):
    make_user("bob")
    client = api(admin)
    users = {u["username"]: u for u in client.get("/api/v1/users/").json()["results"]}
    assert users["bob"]["locked_until"] is None
    until = dt.datetime.fromisoformat(users["alice"]["locked_until"])
    assert dt.timedelta(minutes=14) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    locked = client.get("/api/v1/users/", {"locked": "true"}).json()["results"]
    assert [u["username"] for u in locked] == ["alice"]
    others = client.get("/api/v1/users/", {"locked": "false"}).json()["results"]
    assert sorted(u["username"] for u in others) == ["bob", "root"]
    assert (
        client.get("/api/v1/users/alice/").json()["locked_until"]
        == (users["alice"]["locked_until"])
    )


def test_an_account_whose_name_lowers_differently_shows_its_lock(api, admin, settings):
    """Failures count against the username as Python lowers it; the API reads lockouts
    with the users, lowered by the database, so such a name is read apart, and right."""
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    make_user("\u0130nci")
    make_user("bob")
    for _ in range(2):
        login("\u0130nci", "wrong")
    client = api(admin)
    users = {u["username"]: u for u in client.get("/api/v1/users/").json()["results"]}
    assert users["bob"]["locked_until"] is None
    assert users["\u0130nci"]["locked_until"] is not None
    one = client.get("/api/v1/users/\u0130nci/").json()
    assert one["locked_until"] == users["\u0130nci"]["locked_until"]


def test_only_admins_unlock_and_it_is_audited(api, admin, alice_locked):
    assert api(make_user("bob")).post("/api/v1/users/alice/unlock/").status_code == 403
    assert api(alice_locked).post("/api/v1/users/alice/unlock/").status_code == 403
    assert login("alice", PASSWORD).status_code == 429

    response = api(admin).post("/api/v1/users/alice/unlock/")
    assert response.status_code == 200
    assert response.json()["locked_until"] is None
    entry = AuditEntry.objects.get(action="user.unlocked")
    assert (entry.actor_name, entry.target_type, entry.target_id) == ("root", "user", "alice")
    assert entry.after == {"failures_cleared": 2}
    assert login("alice", PASSWORD).status_code == 200

    assert api(admin).post("/api/v1/users/alice/unlock/").status_code == 200  # not locked
    assert AuditEntry.objects.filter(action="user.unlocked").count() == 1
    assert api(admin).post("/api/v1/users/nobody/unlock/").status_code == 404


def test_the_console_shows_the_lock_and_unlocks(client, admin, alice_locked):
    client.force_login(admin)
    listing = client.get("/users/").text
    assert listing.count('class="badge badge-locked"') == 1
    page = client.get("/users/alice/").text
    assert "Locked until" in page
    assert 'action="/users/alice/unlock/"' in page

    response = client.post("/users/alice/unlock/")
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="user.unlocked", target_id="alice").exists()
    page = client.get("/users/alice/").text
    assert "Locked until" not in page
    assert "badge-locked" not in page
    assert login("alice", PASSWORD).status_code == 200


def test_the_console_unlock_is_for_admins_only(client, alice_locked):
    client.force_login(make_user("bob"))
    assert client.post("/users/alice/unlock/").status_code == 403
    assert not AuditEntry.objects.filter(action="user.unlocked").exists()
