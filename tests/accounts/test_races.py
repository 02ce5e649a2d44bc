"""Limits that must hold when requests arrive at the same moment: failed logins are counted
atomically, and the last active admin stays one however admins demote each other.

These need PostgreSQL (``DATABASE_URL``): SQLite runs one writer at a time anyway.
"""

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.models import LoginFailure, User
from accounts.services import api_token_create
from audit.models import AuditEntry
from tests.conftest import require
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql():
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")


def at_once(work: list[Callable[[], object]]) -> list[object]:
    """Run each of ``work`` in its own thread, all released together; their results."""
    barrier = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work[index]()
        except Exception as error:  # the test's assertions report it
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def slow_password_checks(monkeypatch):
    """Count every password check, and make each take long enough (like the real hash) that
    all the concurrent attempts are in flight together."""
    checks: list[str] = []
    lock = threading.Lock()
    check_password = User.check_password

    def counted(user: User, raw_password: str) -> bool:
        with lock:
            checks.append(user.username)
        time.sleep(0.3)
        return check_password(user, raw_password)

    monkeypatch.setattr(User, "check_password", counted)
    return checks


def test_twelve_wrong_logins_at_once_check_at_most_the_limit(settings, slow_password_checks):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 5
    make_user("jenkins")

    def wrong_login():
        return APIClient(REMOTE_ADDR="203.0.113.7").post(
            "/api/v1/auth/login/", {"username": "jenkins", "password": "guess"}, format="json"
        )

    responses = at_once([wrong_login] * 12)
    statuses = sorted(getattr(r, "status_code", r) for r in responses)
    assert len(slow_password_checks) <= 5, statuses
    assert statuses == [401] * len(slow_password_checks) + [429] * (12 - len(slow_password_checks))
    locked = [r for r in responses if r.status_code == 429]
    assert all("Too many failed logins" in r.json()["detail"] for r in locked)
    assert all(int(r["Retry-After"]) > 0 for r in locked)
    assert LoginFailure.objects.filter(username="jenkins").count() == 5
    assert AuditEntry.objects.filter(action="login.locked_out", target_id="jenkins").count() == 1


def test_wrong_logins_at_once_in_any_case_count_for_one_account(settings, slow_password_checks):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 5
    make_user("jenkins")

    def wrong_login(username: str) -> Callable[[], object]:
        return lambda: APIClient(REMOTE_ADDR="203.0.113.7").post(
            "/api/v1/auth/login/", {"username": username, "password": "guess"}, format="json"
        )

    spellings = ["jenkins", "Jenkins", "JENKINS", "jEnKiNs"] * 3
    responses = at_once([wrong_login(name) for name in spellings])
    assert len(slow_password_checks) <= 5
    assert sum(r.status_code == 429 for r in responses) == 12 - len(slow_password_checks)


def test_concurrent_right_and_wrong_passwords_never_exceed_the_limit(
    settings, slow_password_checks
):
    """A right password that arrives with the wrong ones gets no more checks for them."""
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 3
    make_user("jenkins")

    def login(password: str) -> Callable[[], object]:
        return lambda: APIClient(REMOTE_ADDR="203.0.113.7").post(
            "/api/v1/auth/login/", {"username": "jenkins", "password": password}, format="json"
        )

    at_once([login("guess")] * 8 + [login(PASSWORD)])
    assert len(slow_password_checks) <= 3


def test_two_wrong_old_passwords_at_once_count_like_logins(settings, slow_password_checks):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    user = make_user("jenkins")
    raw_token, _ = api_token_create(user=user)

    def change() -> object:
        client = APIClient(REMOTE_ADDR="203.0.113.7")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
        return client.post(
            "/api/v1/users/jenkins/password/",
            {"old_password": "guess", "new_password": "a-Brand-new-passw0rd"},
            format="json",
        )

    responses = at_once([change] * 6)
    assert len(slow_password_checks) == 2
    assert sorted(r.status_code for r in responses) == [400, 400, 429, 429, 429, 429]


@pytest.fixture
def slow_user_saves(monkeypatch):
    """Each save of a user waits a little first: today's race (both count two admins, then
    both write) becomes certain instead of likely."""
    save = User.save

    def slow(user: User, *args: object, **kwargs: object) -> None:
        time.sleep(0.3)
        save(user, *args, **kwargs)

    monkeypatch.setattr(User, "save", slow)


def two_admins() -> tuple[APIClient, APIClient]:
    clients = []
    for name in ("ann", "ben"):
        raw_token, _ = api_token_create(user=make_user(name, is_admin=True))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
        clients.append(client)
    return clients[0], clients[1]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(slow_user_saves):
    ann, ben = two_admins()
    responses = at_once(
        [
            lambda: ann.patch("/api/v1/users/ben/", {"is_admin": False}, format="json"),
            lambda: ben.patch("/api/v1/users/ann/", {"is_admin": False}, format="json"),
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 400], responses
    refused = next(r for r in responses if r.status_code == 400)
    assert "last active admin" in refused.json()["is_admin"][0]
    assert User.objects.filter(is_admin=True, is_active=True).count() == 1


def test_two_admins_deactivating_each_other_at_once_leave_one_admin(slow_user_saves):
    ann, ben = two_admins()
    responses = at_once(
        [
            lambda: ann.delete("/api/v1/users/ben/"),
            lambda: ben.delete("/api/v1/users/ann/"),
        ]
    )
    assert sorted(r.status_code for r in responses) == [204, 400], responses
    refused = next(r for r in responses if r.status_code == 400)
    assert "last active admin" in refused.json()["is_active"][0]
    assert User.objects.filter(is_admin=True, is_active=True).count() == 1


def test_a_demotion_and_a_deactivation_at_once_leave_one_admin(slow_user_saves):
    ann, ben = two_admins()
    responses = at_once(
        [
            lambda: ann.patch("/api/v1/users/ben/", {"is_admin": False}, format="json"),
            lambda: ben.patch("/api/v1/users/ann/", {"is_active": False}, format="json"),
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 400], responses
    assert User.objects.filter(is_admin=True, is_active=True).count() == 1
