"""The identity API's reads cost a fixed number of statements, however many rows they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Team
from accounts.services import team_member_add
from tests.factories import make_team, make_user

pytestmark = pytest.mark.django_db


def statements(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def grow(ci: Team, admin, count: int) -> None:
    """``count`` more users, each in ``ci`` and in a team of their own."""
    for number in range(count):
        user = make_user(f"grown-{number}", full_name=f"Grown {number}")
        make_team(f"grown-{number}", members=(user,), actor=admin)
        team_member_add(actor=admin, team=ci, user=user)


@pytest.mark.parametrize(
    ("path", "most"),
    [
        # the token; the count and the page; the page's teams or members
        ("/api/v1/users/", 4),
        ("/api/v1/teams/", 4),
        # the token; the team; the count and the page
        ("/api/v1/teams/ci/members/", 4),
        # the token; the object; its teams or members
        ("/api/v1/users/root/", 3),
        ("/api/v1/teams/ci/", 3),
    ],
)
def test_reads_take_as_many_statements_for_many_rows_as_for_few(api, admin, path, most):
    ci = make_team("ci", members=(admin,), actor=admin)
    client = api(admin)
    few = statements(client, path)
    grow(ci, admin, 12)
    assert statements(client, path) == few <= most


def test_members_are_listed_with_their_names_and_status_in_order(api, admin):
    """The members' page reads their columns with them (once 2 statements a member)."""
    zed = make_user("zed", full_name="Zed")
    amy = make_user("amy", full_name="Amy")
    make_team("ci", members=(zed, amy, admin), actor=admin)
    client = api(admin)
    client.delete("/api/v1/users/zed/")
    assert client.get("/api/v1/teams/ci/members/").json()["results"] == [
        {"username": "amy", "full_name": "Amy", "is_active": True},
        {"username": "root", "full_name": "Root Admin", "is_active": True},
        {"username": "zed", "full_name": "Zed", "is_active": False},
    ]


def test_teams_and_members_read_at_once_are_those_of_each_row(api, admin, alice):
    bob = make_user("bob")
    make_team("ops", members=(bob, alice), actor=admin)
    make_team("ci", members=(alice,), actor=admin)
    make_team("empty", actor=admin)
    client = api(admin)
    users = {u["username"]: u["teams"] for u in client.get("/api/v1/users/").json()["results"]}
    assert users == {"alice": ["ci", "ops"], "bob": ["ops"], "root": []}
    assert client.get("/api/v1/users/alice/").json()["teams"] == ["ci", "ops"]
    teams = {t["name"]: t["members"] for t in client.get("/api/v1/teams/").json()["results"]}
    assert teams == {"ci": ["alice"], "empty": [], "ops": ["alice", "bob"]}
    assert client.get("/api/v1/teams/ops/").json()["members"] == ["alice", "bob"]
    # A write's answer reads them from the object written.
    assert client.patch("/api/v1/teams/ops/", {"description": "Ops"}, format="json").json()[
        "members"
    ] == [
        "alice",
        "bob",
    ]
    assert client.patch("/api/v1/users/alice/", {"full_name": "A"}, format="json").json()[
        "teams"
    ] == [
        "ci",
        "ops",
    ]
