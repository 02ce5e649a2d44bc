"""Bad input to users, teams and logins is a 4xx or a form error, never a 500: NUL characters
in paths and fields, bodies that are not objects, JSON nested thousands deep."""

import logging

import pytest

from tests.factories import make_team

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/users/%00/"),
        ("patch", "/api/v1/users/%00/"),
        ("delete", "/api/v1/users/%00/"),
        ("post", "/api/v1/users/%00/password/"),
        ("get", "/api/v1/users/%00/keys/"),
        ("get", "/api/v1/teams/%00/"),
        ("patch", "/api/v1/teams/%00/"),
        ("delete", "/api/v1/teams/%00/"),
        ("get", "/api/v1/teams/%00/members/"),
        ("put", "/api/v1/teams/ci/members/%00/"),
        ("delete", "/api/v1/teams/%00/members/root/"),
    ],
)
def test_a_nul_in_a_user_or_team_path_is_a_404(api, admin, method, path):
    make_team("ci", actor=admin)
    response = getattr(api(admin), method)(path, {}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("query", ["search=%00", "team=ci%00", "is_admin=%00"])
def test_a_nul_in_a_user_search_is_a_400(api, admin, query):
    response = api(admin).get(f"/api/v1/users/?{query}")
    assert response.status_code == 400
    assert response.json() == {"detail": "Null characters are not allowed in the query string."}


@pytest.mark.parametrize(
    ("body", "kind"), [("1", "int"), ("null", "NoneType"), ('"x"', "str"), ("[]", "list")]
)
def test_a_team_change_that_is_not_an_object_is_a_400(api, admin, body, kind):
    """The view looked for ``name`` in the body before any serializer saw it."""
    make_team("ci", actor=admin)
    response = api(admin).patch("/api/v1/teams/ci/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]
    }


def test_a_login_nested_5000_deep_is_a_400_without_a_traceback(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.post("/api/v1/auth/login/", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested deeper than 64 levels."}
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("field", ["username", "full_name", "email", "password"])
def test_a_nul_in_a_new_user_is_a_400_on_the_field(api, admin, field):
    body = {"username": "newbie", "password": "a-long-enough-password", field: "x\x00y"}
    response = api(admin).post("/api/v1/users/", body, format="json")
    assert response.status_code == 400
    assert "Null characters are not allowed." in response.json()[field]


# --- The console ----------------------------------------------------------------------------


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/users/%00/",
        "/users/%00/edit/",
        "/users/%00/password/",
        "/users/%00/deactivate/",
        "/users/%00/reactivate/",
        "/teams/%00/",
        "/teams/%00/edit/",
        "/teams/%00/delete/",
        "/teams/%00/members/",
        "/teams/ci/members/%00/remove/",
    ],
)
def test_a_nul_in_a_console_path_is_the_404_page(as_admin, admin, path):
    make_team("ci", actor=admin)
    assert as_admin.get(path).status_code == 404
    assert as_admin.post(path).status_code == 404


def test_a_nul_in_the_team_member_form_is_a_form_error(as_admin, admin, alice):
    make_team("ci", actor=admin)
    response = as_admin.post("/teams/ci/members/", {"username": "alice\x00"})
    assert response.status_code == 200
    assert response.context["member_form"].errors["username"]


@pytest.mark.parametrize("field", ["username", "full_name"])
def test_a_nul_in_the_new_user_form_is_a_form_error(as_admin, field):
    data = {
        "username": "newbie",
        "full_name": "New Bie",
        "password": "a-long-enough-password",
        "password_confirm": "a-long-enough-password",
        field: "x\x00y",
    }
    response = as_admin.post("/users/new/", data)
    assert response.status_code == 200
    assert response.context["form"].errors[field] == ["Null characters are not allowed."]


def test_a_nul_in_the_login_form_is_a_form_error(client):
    response = client.post("/login/", {"username": "ro\x00ot", "password": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors["username"] == ["Null characters are not allowed."]
