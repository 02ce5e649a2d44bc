"""The directory API (admins only), a mapped team's members through the teams API, and
``/readyz`` with a directory configured. LDAP is at a closed port, a made-up answer
(``tests/directory/fakes.py``) where a sync needs people, or the session's slapd."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from accounts.models import Membership
from directory.api import ChangeSerializer, ChangesField
from directory.models import GroupMapping, SyncRun
from directory.services import group_mapping_create
from gatehouse import health
from tests.directory.conftest import ldap_settings_for
from tests.directory.fakes import (
    BIND_PASSWORD,
    CI_GROUP,
    CLIENT_SECRET,
    closed_port,
    directory_lists,
    directory_user,
    ldap_configured,
    oidc_configured,
)
from tests.factories import make_team, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_admin(api, admin):
    return api(admin)


def members(team: str) -> set[str]:
    return set(Membership.objects.filter(team__name=team).values_list("user__username", flat=True))


# --- status -------------------------------------------------------------------------------


def test_the_status_without_a_directory(as_admin):
    response = as_admin.get("/api/v1/directory/")

    assert response.status_code == 200
    assert response.json() == {
        "ldap": {
            "configured": False,
            "url": "",
            "can_list": False,
            "sync_seconds": 0,
            "reachable": False,
            "error": "",
        },
        "oidc": {"configured": False, "issuer": ""},
        "last_run": None,
        "last_applied": None,
    }


def test_the_status_shows_the_latest_run_and_the_latest_applied_one(
    as_admin, admin, django_assert_max_num_queries
):
    now = timezone.now()

    def run(minutes_ago: int, outcome: str, actor=None) -> int:
        started = now - dt.timedelta(minutes=minutes_ago)
        return SyncRun.objects.create(
            source="ldap",
            trigger="manual" if actor else "schedule",
            actor=actor,
            started_at=started,
            finished_at=started,
            outcome=outcome,
            people=minutes_ago,
            changes=[{"kind": "join", "username": "carol", "team": "ci", "detail": ""}],
        ).pk

    def status(statements: int) -> tuple[dict, dict]:
        """The status, read in ``statements`` at most, and every run as the list shows it."""
        listed = as_admin.get("/api/v1/directory/runs/").json()["results"]
        with django_assert_max_num_queries(statements):
            body = as_admin.get("/api/v1/directory/").json()
        return body, {row["id"]: row for row in listed}

    applied = run(3, "applied", admin)
    run(1, "dry_run", admin)
    body, listed = status(2)  # the token, the latest run: it is the latest applied one too
    assert body["last_run"] == body["last_applied"] == listed[applied]
    assert body["last_run"]["actor"] == "root"

    unreachable = run(2, "unreachable")
    body, listed = status(3)
    assert body["last_run"] == listed[unreachable]
    assert body["last_applied"] == listed[applied]


def test_the_status_says_ldap_is_unreachable_and_shows_no_secret(as_admin, settings):
    ldap_configured(settings)
    oidc_configured(settings, "https://sso.example.com")
    settings.GATEHOUSE_DIRECTORY_SYNC_SECONDS = 600
    started = timezone.now() - dt.timedelta(minutes=5)
    SyncRun.objects.create(
        source="ldap",
        trigger="schedule",
        started_at=started,
        finished_at=started,
        outcome="applied",
        people=4,
    )
    SyncRun.objects.create(
        source="ldap",
        trigger="schedule",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        outcome="unreachable",
        error="connection refused",
    )

    response = as_admin.get("/api/v1/directory/")

    body = response.json()
    ldap = body["ldap"]
    assert (ldap["configured"], ldap["url"], ldap["can_list"], ldap["sync_seconds"]) == (
        True,
        settings.GATEHOUSE_LDAP_URL,
        True,
        600,
    )
    assert ldap["reachable"] is False
    assert "refused" in ldap["error"].lower()
    assert body["oidc"] == {"configured": True, "issuer": "https://sso.example.com"}
    assert (body["last_run"]["outcome"], body["last_run"]["error"]) == (
        "unreachable",
        "connection refused",
    )
    assert (body["last_applied"]["outcome"], body["last_applied"]["people"]) == ("applied", 4)
    assert BIND_PASSWORD not in response.content.decode()
    assert CLIENT_SECRET not in response.content.decode()


def test_the_status_says_ldap_is_reachable(as_admin, settings, slapd):
    ldap_settings_for(settings, slapd)

    ldap = as_admin.get("/api/v1/directory/").json()["ldap"]

    assert (ldap["reachable"], ldap["error"]) == (True, "")


def test_the_status_reports_ldap_settings_it_cannot_use(as_admin, settings):
    ldap_configured(settings)
    settings.GATEHOUSE_LDAP_CA_FILE = "/nonexistent/ca.pem"

    ldap = as_admin.get("/api/v1/directory/").json()["ldap"]

    assert ldap["reachable"] is False
    assert ldap["error"] == "invalid CA public key file"


# --- mappings -------------------------------------------------------------------------------


def test_an_admin_maps_a_group_lists_and_unmaps_it(as_admin, admin, alice):
    make_team("ci", members=(alice,), actor=admin)
    directory_user("carol", groups=(CI_GROUP,))

    created = as_admin.post(
        "/api/v1/directory/mappings/",
        {"source": "ldap", "group": CI_GROUP, "team": "ci"},
        format="json",
    )

    assert created.status_code == 201, created.json()
    mapping = created.json()
    assert {key: mapping[key] for key in ("source", "group", "team")} == {
        "source": "ldap",
        "group": CI_GROUP,
        "team": "ci",
    }
    assert members("ci") == {"carol"}
    listed = as_admin.get("/api/v1/directory/mappings/").json()
    assert listed["count"] == 1
    assert listed["results"] == [mapping]

    deleted = as_admin.delete(f"/api/v1/directory/mappings/{mapping['id']}/")

    assert deleted.status_code == 204
    assert not GroupMapping.objects.exists()
    assert members("ci") == {"carol"}
    assert as_admin.delete(f"/api/v1/directory/mappings/{mapping['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "ldap", "group": CI_GROUP, "team": "ghost"}, "team"),
        ({"source": "ldap", "group": CI_GROUP}, "team"),
        ({"source": "nis", "group": CI_GROUP, "team": "ci"}, "source"),
        ({"source": "ldap", "group": "", "team": "ci"}, "group"),
        ({"source": "ldap", "group": "   ", "team": "ci"}, "group"),
        ({"source": "ldap", "group": "x" * 501, "team": "ci"}, "group"),
        ({"source": "ldap", "group": "cn=a\x00", "team": "ci"}, "group"),
        ({"source": "ldap", "group": "cn=a\nb", "team": "ci"}, "group"),
    ],
)
def test_bad_mappings_are_400_naming_the_field(as_admin, admin, body, field):
    make_team("ci", actor=admin)

    response = as_admin.post("/api/v1/directory/mappings/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not GroupMapping.objects.exists()


def test_a_group_mapped_twice_to_a_team_is_400(as_admin, admin):
    team = make_team("ci", actor=admin)
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)

    response = as_admin.post(
        "/api/v1/directory/mappings/",
        {"source": "ldap", "group": CI_GROUP.replace(",", ", "), "team": "ci"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"group": ["That group is already mapped to that team."]}


@pytest.mark.parametrize("mapping_id", ["999999", "abc"])
def test_an_unknown_mapping_is_404(as_admin, mapping_id):
    assert as_admin.delete(f"/api/v1/directory/mappings/{mapping_id}/").status_code == 404


def test_non_admins_get_403(api, alice):
    client = api(alice)
    for method, path in [
        ("get", "/api/v1/directory/"),
        ("get", "/api/v1/directory/mappings/"),
        ("get", "/api/v1/directory/runs/"),
        ("post", "/api/v1/directory/sync/"),
    ]:
        assert getattr(client, method)(path).status_code == 403, path


# --- a mapped team refuses edits by hand ----------------------------------------------------


def test_a_mapped_teams_members_cannot_be_added_or_removed_through_the_api(as_admin, admin):
    team = make_team("ci", actor=admin)
    directory_user("carol", groups=(CI_GROUP,))
    make_user("bob")
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    refusal = {
        "detail": f"The members of ci come from the directory (LDAP group {CI_GROUP}); "
        "change them there, not by hand.",
        "owned_by": [f"the directory (LDAP group {CI_GROUP})"],
    }

    added = as_admin.put("/api/v1/teams/ci/members/bob/")
    removed = as_admin.delete("/api/v1/teams/ci/members/carol/")

    assert (added.status_code, added.json()) == (409, refusal)
    assert (removed.status_code, removed.json()) == (409, refusal)
    assert members("ci") == {"carol"}


# --- runs and syncs -------------------------------------------------------------------------


def test_runs_are_listed_newest_first_and_paginated(as_admin):
    now = timezone.now()
    for minutes in range(3):
        started = now - dt.timedelta(minutes=minutes)
        SyncRun.objects.create(
            source="ldap",
            trigger="schedule",
            started_at=started,
            finished_at=started,
            outcome="applied",
            people=minutes,
        )

    page = as_admin.get("/api/v1/directory/runs/?limit=2").json()

    assert page["count"] == 3
    assert [run["people"] for run in page["results"]] == [0, 1]
    assert page["next"]
    assert as_admin.get(page["next"]).json()["results"][0]["people"] == 2


def test_the_lists_statements_do_not_grow_with_their_rows(
    as_admin, admin, django_assert_max_num_queries
):
    """Each list: the token, the count and the page, whatever the runs' actors and the
    mappings' teams."""
    now = timezone.now()
    for number in range(4):
        team = make_team(f"team-{number}", actor=admin)
        group_mapping_create(actor=admin, source="ldap", group=f"cn=g{number},dc=x", team=team)
        actor = make_user(f"admin-{number}", is_admin=True)
        SyncRun.objects.create(
            source="ldap", trigger="manual", actor=actor, started_at=now, finished_at=now,
            outcome="applied",
        )  # fmt: skip
        for path in ("/api/v1/directory/runs/", "/api/v1/directory/mappings/"):
            with django_assert_max_num_queries(3):
                assert as_admin.get(path).json()["count"] == number + 1


def test_a_runs_changes_read_as_the_change_serializer_gives_them():
    changes = [
        {"kind": "join", "username": "carol", "team": "ci", "detail": ""},
        {"detail": "disabled in the directory", "username": "dave", "kind": "deactivate"},
        {"kind": "profile", "username": None, "team": 7, "detail": "email", "extra": "x"},
    ]
    given = ChangesField().to_representation(changes)
    assert json.dumps(given) == json.dumps(ChangeSerializer(changes, many=True).data)  # in order


def test_a_sync_without_a_directory_is_400(as_admin):
    response = as_admin.post("/api/v1/directory/sync/", {"dry_run": True}, format="json")

    assert response.status_code == 400
    [message] = response.json()["source"]
    assert "GATEHOUSE_LDAP_URL" in message
    assert not SyncRun.objects.exists()


def test_a_dry_run_answers_the_changes_and_changes_nothing(as_admin, admin, settings, monkeypatch):
    team = make_team("ci", actor=admin)
    directory_user("carol")
    directory_user("dave")
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    directory_lists(monkeypatch, settings, {"carol": [CI_GROUP]})

    response = as_admin.post("/api/v1/directory/sync/", {"dry_run": True}, format="json")

    assert response.status_code == 200
    run = response.json()
    assert (run["outcome"], run["people"], run["error"], run["actor"]) == (
        "dry_run",
        1,
        "",
        "root",
    )
    assert run["changes"] == [
        {
            "kind": "deactivate",
            "username": "dave",
            "team": "",
            "detail": "no longer in the directory",
        },
        {"kind": "join", "username": "carol", "team": "ci", "detail": ""},
    ]
    assert members("ci") == set()


def test_a_sync_applies_the_changes(as_admin, admin, settings, monkeypatch):
    team = make_team("ci", actor=admin)
    directory_user("carol")
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    directory_lists(monkeypatch, settings, {"carol": [CI_GROUP]})

    response = as_admin.post("/api/v1/directory/sync/", {}, format="json")

    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    assert members("ci") == {"carol"}


def test_a_sync_with_ldap_unreachable_is_a_run_that_changed_nothing(as_admin, settings):
    ldap_configured(settings)
    directory_user("carol")

    response = as_admin.post("/api/v1/directory/sync/", {"dry_run": False}, format="json")

    assert response.status_code == 200
    run = response.json()
    assert (run["outcome"], run["changes"]) == ("unreachable", [])
    assert "refused" in run["error"].lower()
    assert as_admin.get("/api/v1/directory/").json()["last_run"]["id"] == run["id"]


# --- /readyz ------------------------------------------------------------------------------


@pytest.fixture
def notary_answers(monkeypatch):
    """Notary's check passes, so the directory's checks alone decide between ok and degraded."""
    monkeypatch.setitem(health.CHECKS, "notary", (lambda: None, ()))


def test_readyz_stays_200_degraded_when_the_directory_cannot_be_reached(
    client, settings, notary_answers
):
    ldap_configured(settings)
    oidc_configured(settings, f"http://127.0.0.1:{closed_port()}")

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["ldap"]["ok"] is False
    assert "refused" in body["checks"]["ldap"]["error"].lower()
    assert body["checks"]["oidc"]["ok"] is False
    assert body["checks"]["oidc"]["error"].startswith("The identity provider cannot be reached")
    assert BIND_PASSWORD not in response.content.decode()
    assert CLIENT_SECRET not in response.content.decode()


def test_readyz_checks_no_directory_that_is_not_configured(client, notary_answers):
    body = client.get("/readyz").json()

    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "notary"}


def test_readyz_is_ok_when_ldap_answers(client, settings, slapd, notary_answers):
    ldap_settings_for(settings, slapd)

    body = client.get("/readyz").json()

    assert body["status"] == "ok", body
    assert body["checks"]["ldap"]["ok"] is True


def test_readyz_is_ok_when_the_openid_provider_answers(
    client, settings, oidc_provider, notary_answers
):
    oidc_configured(settings, oidc_provider.issuer)
    settings.GATEHOUSE_OIDC_CA_FILE = str(oidc_provider.ca_file)

    body = client.get("/readyz").json()

    assert body["status"] == "ok", body
    assert body["checks"]["oidc"]["ok"] is True


def test_readyz_is_503_when_a_required_check_fails_whatever_the_directory(client, settings):
    ldap_configured(settings)
    settings.NOTARY_URL = f"http://127.0.0.1:{closed_port()}"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_readyz_redacts_the_directorys_secrets(settings):
    settings.GATEHOUSE_LDAP_BIND_PASSWORD = BIND_PASSWORD
    settings.GATEHOUSE_OIDC_CLIENT_SECRET = CLIENT_SECRET

    redacted = health._redact(f"bind as x with {BIND_PASSWORD} and {CLIENT_SECRET} failed")

    assert redacted == "bind as x with *** and *** failed"
