"""Usernames are unique regardless of case, and every login ignores case: ``Jenkins`` and
``jenkins`` are one account. URLs name a user exactly as created."""

import base64

import pytest
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from accounts.models import LoginFailure, User
from accounts.services import user_create
from audit.models import AuditEntry
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def api_login(username: str, password: str = PASSWORD):
    return APIClient(REMOTE_ADDR="203.0.113.7").post(
        "/api/v1/auth/login/", {"username": username, "password": password}, format="json"
    )


@pytest.fixture
def jenkins(db):
    return make_user("Jenkins")


def test_creating_a_case_variant_is_a_400_naming_username(api, admin, jenkins):
    for username in ("jenkins", "JENKINS"):
        response = api(admin).post(
            "/api/v1/users/", {"username": username, "password": PASSWORD}, format="json"
        )
        assert response.status_code == 400, username
        assert response.json() == {
            "username": [
                "A user with that username already exists: 'Jenkins' (usernames ignore case)."
            ]
        }
    same = api(admin).post(
        "/api/v1/users/", {"username": "Jenkins", "password": PASSWORD}, format="json"
    )
    assert same.json() == {"username": ["A user with that username already exists."]}
    assert User.objects.filter(username__iexact="jenkins").count() == 1


def test_the_console_refuses_a_case_variant(client, admin, jenkins):
    client.force_login(admin)
    page = client.post(
        "/users/new/",
        {"username": "jenkins", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert page.status_code == 200
    assert "already exists: &#x27;Jenkins&#x27; (usernames ignore case)" in page.text
    assert not User.objects.filter(username="jenkins").exists()


def test_the_database_refuses_a_case_variant_too(jenkins):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="JENKINS", password="!")


@pytest.mark.parametrize("typed", ["Jenkins", "jenkins", "JENKINS"])
def test_the_api_login_ignores_case(jenkins, typed):
    response = api_login(typed)
    assert response.status_code == 200
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert me.get("/api/v1/users/").json()["results"][0]["username"] == "Jenkins"
    entry = AuditEntry.objects.get(action="login.succeeded")
    assert (entry.actor_name, entry.target_id) == ("Jenkins", "Jenkins")


def test_the_console_login_ignores_case(client, jenkins):
    response = client.post("/login/", {"username": "jENKINS", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(jenkins.pk)


def test_the_notary_token_service_ignores_case(client, jenkins, settings):
    credentials = base64.b64encode(f"jenkins:{PASSWORD}".encode()).decode()
    response = client.get(
        "/auth/token",
        {
            "service": settings.GATEHOUSE_NOTARY_SERVICE,
            "scope": "repository:a/b:pull",
            "account": "JENKINS",
        },
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    assert response.status_code == 200


def test_failures_in_any_case_lock_the_one_account(jenkins, settings):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 3
    for typed in ("jenkins", "JENKINS", "Jenkins"):
        assert api_login(typed, "guess").status_code == 401
    assert api_login("jenkins").status_code == 429
    assert set(LoginFailure.objects.values_list("username", flat=True)) == {"jenkins"}
    entry = AuditEntry.objects.get(action="login.locked_out", target_type="user")
    assert entry.target_id == "Jenkins"


def test_urls_name_a_user_exactly_as_created(api, admin, jenkins):
    assert api(admin).get("/api/v1/users/Jenkins/").status_code == 200
    assert api(admin).get("/api/v1/users/jenkins/").status_code == 404


# --- The migration that adds the constraint ------------------------------------------------

BEFORE = [("accounts", "0003_login_guard")]


@pytest.fixture
def before_the_constraint(transactional_db):
    """The schema before usernames ignored case; forward again afterwards, whatever the
    test did, so the rest of the suite finds the schema it expects."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    apps = executor.loader.project_state(BEFORE).apps
    try:
        yield apps, leaves
    finally:
        apps.get_model("accounts", "User").objects.filter(username__startswith="x-").delete()
        MigrationExecutor(connection).migrate(leaves)


def test_the_migration_refuses_case_duplicates_and_names_them(before_the_constraint):
    apps, leaves = before_the_constraint
    User = apps.get_model("accounts", "User")
    for username in ("x-Jenkins", "x-jenkins", "x-JENKINS", "x-ok", "x-Bob", "x-bob"):
        User.objects.create(username=username, password="!")
    with pytest.raises(CommandError) as refused:
        MigrationExecutor(connection).migrate(leaves)
    message = str(refused.value)
    assert "x-JENKINS, x-Jenkins, x-jenkins" in message
    assert "x-Bob, x-bob" in message
    assert "x-ok" not in message

    User.objects.filter(username__in=["x-Jenkins", "x-JENKINS", "x-Bob"]).delete()
    MigrationExecutor(connection).migrate(leaves)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="x-OK", password="!")


def test_a_deactivated_users_name_stays_taken_in_any_case(admin):
    user = make_user("ci-bot")
    deactivate = APIClient()
    deactivate.force_authenticate(admin)
    assert deactivate.delete(f"/api/v1/users/{user.username}/").status_code == 204
    with pytest.raises(ValidationError) as refused:
        user_create(actor=admin, username="CI-Bot", password=PASSWORD)
    assert "username" in refused.value.message_dict
