import pytest
from django.utils.dateparse import parse_datetime

from accounts.models import Membership, Team, User
from tests.factories import PASSWORD, make_team, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase"


@pytest.fixture
def world(admin, alice):
    """alice is in ci; bob is in ops; root is the admin."""
    bob = make_user("bob")
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", members=(bob,), actor=admin)
    return {"admin": admin, "alice": alice, "bob": bob}


# (method, path, body, {caller: expected status}); "alice" is an ordinary user in team ci.
MATRIX = [
    ("get", "/api/v1/users/", None, {"anonymous": 401, "alice": 200, "admin": 200}),
    (
        "post",
        "/api/v1/users/",
        {"username": "newcomer", "password": NEW_PASSWORD},
        {"anonymous": 401, "alice": 403, "admin": 201},
    ),
    ("get", "/api/v1/users/alice/", None, {"anonymous": 401, "alice": 200, "admin": 200}),
    ("get", "/api/v1/users/bob/", None, {"anonymous": 401, "alice": 404, "admin": 200}),
    (
        "patch",
        "/api/v1/users/alice/",
        {"full_name": "A"},
        {"anonymous": 401, "alice": 200, "admin": 200},
    ),
    (
        "patch",
        "/api/v1/users/alice/",
        {"is_admin": True},
        {"anonymous": 401, "alice": 403, "admin": 200},
    ),
    (
        "patch",
        "/api/v1/users/bob/",
        {"full_name": "B"},
        {"anonymous": 401, "alice": 404, "admin": 200},
    ),
    ("delete", "/api/v1/users/bob/", None, {"anonymous": 401, "alice": 403, "admin": 204}),
    (
        "post",
        "/api/v1/users/bob/password/",
        {"new_password": NEW_PASSWORD},
        {"anonymous": 401, "alice": 404, "admin": 204},
    ),
    (
        "post",
        "/api/v1/users/alice/password/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        {"anonymous": 401, "alice": 204, "admin": 204},
    ),
    ("get", "/api/v1/teams/", None, {"anonymous": 401, "alice": 200, "admin": 200}),
    ("post", "/api/v1/teams/", {"name": "dev"}, {"anonymous": 401, "alice": 403, "admin": 201}),
    ("get", "/api/v1/teams/ci/", None, {"anonymous": 401, "alice": 200, "admin": 200}),
    ("get", "/api/v1/teams/ops/", None, {"anonymous": 401, "alice": 404, "admin": 200}),
    (
        "patch",
        "/api/v1/teams/ci/",
        {"description": "x"},
        {"anonymous": 401, "alice": 403, "admin": 200},
    ),
    ("delete", "/api/v1/teams/ops/", None, {"anonymous": 401, "alice": 403, "admin": 204}),
    ("get", "/api/v1/teams/ci/members/", None, {"anonymous": 401, "alice": 200, "admin": 200}),
    ("get", "/api/v1/teams/ops/members/", None, {"anonymous": 401, "alice": 404, "admin": 200}),
    ("put", "/api/v1/teams/ci/members/bob/", None, {"anonymous": 401, "alice": 403, "admin": 201}),
    (
        "delete",
        "/api/v1/teams/ci/members/alice/",
        None,
        {"anonymous": 401, "alice": 403, "admin": 204},
    ),
    ("post", "/api/v1/auth/logout/", None, {"anonymous": 401, "alice": 204, "admin": 204}),
    ("get", "/api/v1/schema/", None, {"anonymous": 200, "alice": 200, "admin": 200}),
]


@pytest.mark.parametrize("caller", ["anonymous", "alice", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
def test_permission_matrix(api, world, caller, method, path, body, expected):
    client = api(None if caller == "anonymous" else world[caller])
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == expected[caller], response.content


def test_login_gives_a_token_that_works_until_logout(alice):
    client = api_client()
    response = client.post(
        "/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert parse_datetime(response.json()["expires_at"]) is not None
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert client.get("/api/v1/users/alice/").json()["username"] == "alice"

    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert client.get("/api/v1/users/alice/").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_login_refuses_wrong_credentials(alice, body):
    response = api_client().post("/api/v1/auth/login/", body, format="json")
    assert response.status_code == 401
    assert "token" not in response.json()


def test_a_deactivated_user_can_neither_log_in_nor_use_a_token(api, admin, alice):
    client = api(alice)
    api(admin).delete("/api/v1/users/alice/")
    assert client.get("/api/v1/users/alice/").status_code == 401
    response = api_client().post(
        "/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 401
    assert User.objects.get(username="alice").is_active is False


def test_user_fields_and_password_never_shown(api, world):
    response = api(world["admin"]).get("/api/v1/users/alice/")
    assert response.json() == {
        "username": "alice",
        "full_name": "Alice Liddell",
        "email": "alice@example.com",
        "is_admin": False,
        "is_active": True,
        "teams": ["ci"],
        "date_joined": response.json()["date_joined"],
        "locked_until": None,
    }
    created = api(world["admin"]).post(
        "/api/v1/users/", {"username": "carol", "password": NEW_PASSWORD}, format="json"
    )
    assert "password" not in created.json()
    assert User.objects.get(username="carol").check_password(NEW_PASSWORD)


def test_usernames_with_dots_and_at_signs_are_addressable(api, admin):
    make_user("first.last@example")
    response = api(admin).get("/api/v1/users/first.last@example/")
    assert response.status_code == 200
    assert response.json()["username"] == "first.last@example"


def test_lists_are_paged_and_filterable(api, world):
    client = api(world["admin"])
    for n in range(5):
        make_user(f"svc{n}", full_name="Service Account")
    page = client.get("/api/v1/users/", {"limit": 2, "offset": 1}).json()
    assert page["count"] == 8
    assert len(page["results"]) == 2
    assert page["next"]
    assert page["previous"]

    found = client.get("/api/v1/users/", {"search": "service"}).json()
    assert {u["username"] for u in found["results"]} == {f"svc{n}" for n in range(5)}
    in_ci = client.get("/api/v1/users/", {"team": "ci"}).json()
    assert [u["username"] for u in in_ci["results"]] == ["alice"]
    client.delete("/api/v1/users/bob/")
    inactive = client.get("/api/v1/users/", {"is_active": "false"}).json()
    assert [u["username"] for u in inactive["results"]] == ["bob"]
    teams = client.get("/api/v1/teams/", {"search": "op"}).json()
    assert [t["name"] for t in teams["results"]] == ["ops"]


def test_member_put_is_201_then_200_and_delete_of_a_non_member_is_404(api, world):
    client = api(world["admin"])
    assert client.put("/api/v1/teams/ci/members/bob/").status_code == 201
    assert client.put("/api/v1/teams/ci/members/bob/").status_code == 200
    members = client.get("/api/v1/teams/ci/members/").json()["results"]
    assert [m["username"] for m in members] == ["alice", "bob"]
    assert client.get("/api/v1/teams/ci/").json()["members"] == ["alice", "bob"]
    assert client.delete("/api/v1/teams/ci/members/bob/").status_code == 204
    response = client.delete("/api/v1/teams/ci/members/bob/")
    assert response.status_code == 404
    assert "not a member" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/teams/", {"name": "Bad Name"}, "name"),
        ("post", "/api/v1/teams/", {"name": "releases"}, "name"),
        ("post", "/api/v1/teams/", {"name": "ci"}, "name"),
        ("post", "/api/v1/teams/", {"name": "x" * 65}, "name"),
        ("post", "/api/v1/teams/", {"name": ["ci"]}, "name"),
        ("post", "/api/v1/teams/", {"name": "d", "description": "x" * 501}, "description"),
        ("patch", "/api/v1/teams/ci/", {"name": "renamed"}, "name"),
        ("post", "/api/v1/users/", {"username": "alice", "password": NEW_PASSWORD}, "username"),
        ("post", "/api/v1/users/", {"username": "a b", "password": NEW_PASSWORD}, "username"),
        ("post", "/api/v1/users/", {"username": "y" * 151, "password": NEW_PASSWORD}, "username"),
        ("post", "/api/v1/users/", {"username": "weak", "password": "1234"}, "password"),
        ("post", "/api/v1/users/", {"username": "nopass"}, "password"),
        (
            "post",
            "/api/v1/users/",
            {"username": "e", "password": NEW_PASSWORD, "email": "no"},
            "email",
        ),
        (
            "post",
            "/api/v1/users/",
            {"username": "t", "password": NEW_PASSWORD, "is_admin": "x"},
            "is_admin",
        ),
        ("patch", "/api/v1/users/alice/", {"email": "not-an-email"}, "email"),
        ("patch", "/api/v1/users/root/", {"is_active": False}, "is_active"),
        ("post", "/api/v1/users/bob/password/", {"new_password": "short"}, "new_password"),
        ("post", "/api/v1/auth/login/", {"username": "root"}, "password"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    api, world, method, path, body, field
):
    before = (
        list(User.objects.values_list("username", "full_name", "email", "is_admin", "is_active")),
        list(Team.objects.values_list("name", "description")),
        Membership.objects.count(),
    )
    response = getattr(api(world["admin"]), method)(path, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    after = (
        list(User.objects.values_list("username", "full_name", "email", "is_admin", "is_active")),
        list(Team.objects.values_list("name", "description")),
        Membership.objects.count(),
    )
    assert after == before


def test_malformed_json_and_unknown_names_are_4xx(api, world):
    client = api(world["admin"])
    response = client.generic(
        "POST", "/api/v1/teams/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert client.put("/api/v1/teams/ci/members/ghost/").status_code == 404
    assert client.put("/api/v1/teams/ghost/members/alice/").status_code == 404
    assert client.get("/api/v1/users/ghost/").status_code == 404
    assert client.post("/api/v1/teams/", "x", content_type="text/plain").status_code == 415


def test_a_user_changes_their_own_password_with_the_old_one(api, alice):
    client = api(alice)
    wrong = client.post(
        "/api/v1/users/alice/password/",
        {"old_password": "nope", "new_password": NEW_PASSWORD},
        format="json",
    )
    assert wrong.status_code == 400
    assert "old_password" in wrong.json()
    ok = client.post(
        "/api/v1/users/alice/password/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert ok.status_code == 204
    assert client.get("/api/v1/users/alice/").status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_the_browser_session_works_for_the_api_with_csrf(client, alice):
    client.force_login(alice)
    assert client.get("/api/v1/users/alice/").json()["username"] == "alice"
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = strict.patch(
        "/api/v1/users/alice/", {"full_name": "X"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def api_client():
    from rest_framework.test import APIClient

    return APIClient()
