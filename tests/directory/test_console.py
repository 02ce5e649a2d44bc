"""The Directory page, the pages the directory changes (a mapped team, the dashboard, the
login page) and ``manage.py directory_sync``, as an admin meets them. LDAP is at a closed
port, or a made-up answer (``tests/directory/fakes.py``) where a sync needs people."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Membership, User
from directory.models import GroupMapping, SyncRun
from directory.services import group_mapping_create
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
def as_admin(client, admin):
    client.force_login(admin)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def members(team: str) -> set[str]:
    return set(Membership.objects.filter(team__name=team).values_list("user__username", flat=True))


def a_run(outcome: str, *, error: str = "", changes: list | None = None, ago: int = 0) -> SyncRun:
    started = timezone.now() - dt.timedelta(minutes=ago)
    return SyncRun.objects.create(
        source="ldap",
        trigger=SyncRun.Trigger.SCHEDULE,
        started_at=started,
        finished_at=started,
        outcome=outcome,
        error=error,
        people=3,
        changes=changes or [],
    )


# --- the page --------------------------------------------------------------------------


def test_only_admins_open_the_directory_page(client, alice):
    client.force_login(alice)
    assert client.get("/directory/").status_code == 403
    assert client.post("/directory/sync/").status_code == 403


def test_the_admin_navigation_links_the_directory_page(as_admin):
    assert '<a href="/directory/"' in as_admin.get("/").text


def test_the_status_shows_what_is_configured_but_no_secret(as_admin, settings):
    ldap_configured(settings)
    oidc_configured(settings, "https://sso.example.com")
    settings.GATEHOUSE_DIRECTORY_SYNC_SECONDS = 300

    page = as_admin.get("/directory/").text

    assert settings.GATEHOUSE_LDAP_URL in page
    assert "https://sso.example.com" in page
    assert "Every 300 seconds" in page
    assert BIND_PASSWORD not in page
    assert CLIENT_SECRET not in page


def test_the_status_says_ldap_cannot_be_reached_now(as_admin, settings):
    ldap_configured(settings)

    response = as_admin.get("/directory/")

    assert response.context["ldap"].reachable is False
    assert "refused" in response.context["ldap"].error.lower()
    assert 'id="ldap-reachable"' in response.text


def test_without_a_directory_the_sync_buttons_are_off_and_say_why(as_admin):
    response = as_admin.get("/directory/")

    assert "No directory is configured (GATEHOUSE_LDAP_URL, GATEHOUSE_OIDC_ISSUER)." in (
        response.text
    )
    assert response.text.count(" disabled>") == 2
    assert "Not configured" in response.text
    # Posted anyway: the service's reason as a message, not an error page.
    response = as_admin.post("/directory/sync/", follow=True)
    [message] = messages_of(response)
    assert "GATEHOUSE_LDAP_URL" in message
    assert not SyncRun.objects.exists()


def test_with_openid_connect_alone_a_sync_is_offered_for_its_sign_ins(as_admin, settings):
    oidc_configured(settings, "https://sso.example.com")

    response = as_admin.get("/directory/")

    assert " disabled>" not in response.text
    assert 'id="sync-scope"' in response.text


def test_without_a_service_account_a_sync_is_not_offered(as_admin, settings):
    ldap_configured(settings)
    settings.GATEHOUSE_LDAP_BIND_DN = ""

    response = as_admin.get("/directory/")

    assert "Reading everyone needs a service account" in response.text
    assert response.text.count(" disabled>") == 2


def test_last_runs_and_recent_runs_are_listed(as_admin, settings):
    ldap_configured(settings)
    a_run(
        SyncRun.Outcome.APPLIED,
        changes=[{"kind": "join", "username": "carol", "team": "ci", "detail": ""}],
        ago=10,
    )
    a_run(SyncRun.Outcome.UNREACHABLE, error="connection refused", ago=5)

    response = as_admin.get("/directory/")

    status = response.context["status"]
    assert status.last_run.outcome == SyncRun.Outcome.UNREACHABLE
    assert status.last_applied.outcome == SyncRun.Outcome.APPLIED
    assert "Add carol to ci" in response.text
    assert "connection refused" in response.text
    assert "nothing was changed" in response.text


# --- mappings ---------------------------------------------------------------------------


def test_an_admin_maps_a_group_and_the_team_is_owned_by_the_directory(as_admin, admin, alice):
    make_team("ci", members=(alice,), actor=admin)
    directory_user("carol", groups=(CI_GROUP,))

    response = as_admin.post(
        "/directory/mappings/", {"source": "ldap", "group": CI_GROUP, "team": "ci"}, follow=True
    )

    assert messages_of(response) == [
        f"LDAP group {CI_GROUP} mapped to ci: its members now come from the directory."
    ]
    assert '<a class="mono" href="/teams/ci/">ci</a>' in response.text
    # Members are now exactly the directory users in the group.
    assert members("ci") == {"carol"}
    team_page = as_admin.get("/teams/ci/").text
    assert f"Members come from the directory (LDAP group {CI_GROUP})" in team_page
    assert "Add a member" not in team_page
    assert "/members/carol/remove/" not in team_page


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"source": "ldap", "group": "", "team": "ci"}, "group", "This field is required."),
        ({"source": "ldap", "group": "   ", "team": "ci"}, "group", "This field is required."),
        ({"source": "ldap", "group": "x" * 501, "team": "ci"}, "group", "1 to 500 characters"),
        ({"source": "ldap", "group": "cn=a", "team": "ghost"}, "team", "ghost is not a team."),
        ({"source": "nis", "group": "cn=a", "team": "ci"}, "source", "Select a valid choice."),
        ({"source": "ldap", "group": "cn=a\x00", "team": "ci"}, "group", "Null characters"),
    ],
)
def test_bad_mappings_are_refused_on_the_form(as_admin, admin, form, field, message):
    make_team("ci", actor=admin)

    response = as_admin.post("/directory/mappings/", form)

    assert response.status_code == 200
    assert message in " ".join(response.context["mapping_form"].errors[field])
    assert not GroupMapping.objects.exists()


def test_a_group_mapped_twice_to_a_team_is_refused(as_admin, admin):
    team = make_team("ci", actor=admin)
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)

    response = as_admin.post(
        "/directory/mappings/",
        {"source": "ldap", "group": CI_GROUP.upper(), "team": "ci"},
    )

    assert response.context["mapping_form"].errors["group"] == [
        "That group is already mapped to that team."
    ]
    assert GroupMapping.objects.count() == 1


def test_deleting_the_last_mapping_gives_the_team_back_to_hand_edits(as_admin, admin):
    team = make_team("ci", actor=admin)
    directory_user("carol", groups=(CI_GROUP,))
    mapping = group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    assert '<form method="post" action="/directory/mappings/' in as_admin.get("/directory/").text

    response = as_admin.post(f"/directory/mappings/{mapping.pk}/delete/", follow=True)

    assert messages_of(response) == [f"LDAP group {CI_GROUP} no longer maps to ci."]
    assert not GroupMapping.objects.exists()
    assert members("ci") == {"carol"}  # kept
    assert "Add a member" in as_admin.get("/teams/ci/").text
    assert as_admin.post(f"/directory/mappings/{mapping.pk}/delete/").status_code == 404


# --- a mapped team refuses edits by hand --------------------------------------------------


def test_a_mapped_teams_members_cannot_be_added_or_removed_by_hand(as_admin, admin):
    team = make_team("ci", actor=admin)
    directory_user("carol", groups=(CI_GROUP,))
    make_user("bob")
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    refusal = (
        f"The members of ci come from the directory (LDAP group {CI_GROUP}); "
        "change them there, not by hand."
    )

    added = as_admin.post("/teams/ci/members/", {"username": "bob"}, follow=True)
    removed = as_admin.post("/teams/ci/members/carol/remove/", follow=True)

    assert messages_of(added) == [refusal]
    assert messages_of(removed) == [refusal]
    assert members("ci") == {"carol"}


# --- syncs -------------------------------------------------------------------------------


def test_a_dry_run_lists_the_changes_in_words_and_changes_nothing(
    as_admin, admin, settings, monkeypatch
):
    team = make_team("ci", actor=admin)
    directory_user("carol")
    directory_user("dave")
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    directory_lists(monkeypatch, settings, {"carol": [CI_GROUP]})

    response = as_admin.post("/directory/sync/preview/")

    assert response.status_code == 200
    assert [(title, changes) for title, changes in response.context["groups"]] == [
        ("Deactivate", ["deactivate dave (no longer in the directory)"]),
        ("Add to teams", ["add carol to ci"]),
    ]
    assert "Deactivate dave (no longer in the directory)" in response.text
    assert "Add carol to ci" in response.text
    assert "Dry run: a sync would make 2 changes; the directory listed 1 person." in response.text
    assert User.objects.get(username="dave").is_active
    assert members("ci") == set()
    assert SyncRun.objects.get().outcome == SyncRun.Outcome.DRY_RUN


def test_sync_now_applies_the_changes_and_says_how_many(as_admin, admin, settings, monkeypatch):
    team = make_team("ci", actor=admin)
    directory_user("carol")
    directory_user("dave")
    group_mapping_create(actor=admin, source="ldap", group=CI_GROUP, team=team)
    directory_lists(monkeypatch, settings, {"carol": [CI_GROUP]})

    response = as_admin.post("/directory/sync/", follow=True)

    assert response.redirect_chain == [("/directory/", 302)]
    assert messages_of(response) == ["Sync applied 2 changes; the directory listed 1 person."]
    assert not User.objects.get(username="dave").is_active
    assert members("ci") == {"carol"}
    run = SyncRun.objects.get()
    assert (run.trigger, run.actor, run.outcome) == ("manual", admin, "applied")


def test_sync_now_with_ldap_unreachable_says_nothing_was_changed(as_admin, settings):
    ldap_configured(settings)
    carol = directory_user("carol")

    response = as_admin.post("/directory/sync/", follow=True)

    [message] = messages_of(response)
    assert message.startswith("The directory could not be read: ")
    assert message.endswith(". Nothing was changed.")
    assert User.objects.get(pk=carol.pk).is_active
    assert SyncRun.objects.get().outcome == SyncRun.Outcome.UNREACHABLE
    preview = as_admin.post("/directory/sync/preview/", follow=True)
    assert messages_of(preview)[0].startswith("The directory could not be read: ")


def test_a_sync_that_lists_nobody_is_refused(as_admin, settings, monkeypatch):
    directory_user("carol")
    directory_lists(monkeypatch, settings, {})

    response = as_admin.post("/directory/sync/", follow=True)

    [message] = messages_of(response)
    assert message.startswith("The sync was refused: The directory listed nobody")
    assert User.objects.get(username="carol").is_active


# --- the dashboard ---------------------------------------------------------------------


def test_the_dashboard_warns_when_the_directory_could_not_be_read(as_admin, settings):
    ldap_configured(settings)
    run = a_run(SyncRun.Outcome.UNREACHABLE, error="connection refused.")

    page = as_admin.get("/").text

    when = timezone.localtime(run.started_at).strftime("%-d %b %Y, %H:%M")
    assert "The directory could not be read at " in page
    assert f"{when}</time>: connection refused.</strong>" in page
    assert "Nothing was changed." in page
    assert '<a href="/directory/">Directory</a>' in page


def test_the_dashboard_shows_the_last_sync_and_no_warning_once_it_works(as_admin, settings):
    ldap_configured(settings)
    a_run(SyncRun.Outcome.UNREACHABLE, error="connection refused", ago=10)
    a_run(SyncRun.Outcome.APPLIED)

    page = as_admin.get("/").text

    assert 'id="directory-summary"' in page
    assert "could not be read" not in page


def test_the_dashboard_has_no_directory_card_without_a_directory(as_admin):
    assert 'id="directory-summary"' not in as_admin.get("/").text


# --- the login page -------------------------------------------------------------------------


def test_the_login_page_offers_single_sign_on_when_configured(client, settings):
    assert "Sign in with" not in client.get("/login/").text
    oidc_configured(settings, "https://sso.example.com")

    page = client.get("/login/?next=/teams/").text

    assert '<a class="button button-primary button-wide" id="oidc-login"' in page
    assert 'href="/oidc/login/?next=/teams/"' in page
    assert "Sign in with Example SSO" in page


def test_the_login_page_shows_why_single_sign_on_failed(client, settings):
    oidc_configured(settings, f"http://127.0.0.1:{closed_port()}")

    response = client.get("/oidc/login/", follow=True)

    assert response.redirect_chain == [("/login/", 302)]
    assert "The identity provider cannot be reached" in response.text


# --- manage.py directory_sync ----------------------------------------------------------------


def test_the_command_prints_each_change_of_a_dry_run(admin, settings, monkeypatch):
    directory_user("carol")
    directory_user("dave")
    directory_lists(monkeypatch, settings, {"carol": []})
    out = io.StringIO()

    call_command("directory_sync", "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        "deactivate dave (no longer in the directory)",
        "Dry run: a sync would make 1 change; the directory listed 1 person. Nothing was changed.",
    ]
    assert User.objects.get(username="dave").is_active


def test_the_command_fails_when_the_directory_cannot_be_read(settings):
    ldap_configured(settings)

    with pytest.raises(CommandError, match=r"^The directory could not be read: .*Nothing was"):
        call_command("directory_sync", stdout=io.StringIO())


def test_the_command_fails_without_ldap():
    with pytest.raises(CommandError, match="GATEHOUSE_LDAP_URL"):
        call_command("directory_sync", stdout=io.StringIO())
