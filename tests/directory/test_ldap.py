"""LDAP logins and syncs against a real slapd over TLS."""

import pytest
from django.contrib.auth import authenticate
from django.test import Client

from accounts.models import Membership, Team, User
from accounts.services import LoginUnavailable, team_create
from audit.models import AuditEntry
from directory import services
from directory.models import DirectoryAccount, SyncRun
from tests.directory.conftest import ldap_settings_for
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def members(team_name: str) -> set[str]:
    return set(
        Membership.objects.filter(team__name=team_name).values_list("user__username", flat=True)
    )


def test_a_directory_user_logs_in_and_is_created_with_their_name_and_email(ldap_settings):
    user = authenticate(None, username="alice", password="alice-pass")

    assert user is not None
    assert (user.username, user.full_name, user.email) == (
        "alice",
        "Alice Archer",
        "alice@example.org",
    )
    assert not user.has_usable_password()
    account = DirectoryAccount.objects.get(user=user)
    assert "cn=ci,ou=groups,dc=example,dc=org" in account.groups
    created = AuditEntry.objects.get(action="user.created", target_id="alice")
    assert created.actor_name == "directory"


def test_the_console_login_works_for_a_directory_user(ldap_settings):
    client = Client()
    response = client.post("/login/", {"username": "bob", "password": "bob-pass"})

    assert response.status_code == 302
    assert client.get("/profile/").status_code == 200


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_wrong_or_empty_password_is_refused_and_counted(ldap_settings, password):
    assert authenticate(None, username="alice", password=password) is None
    assert not User.objects.filter(username="alice").exists()


@pytest.mark.parametrize(
    "username", ["*", "*)(uid=*", "alice)(|(uid=*", "al*", "*)(objectClass=*", "alice\\2a"]
)
def test_filter_injection_in_the_username_finds_nobody(ldap_settings, username):
    assert authenticate(None, username=username, password="alice-pass") is None
    assert not DirectoryAccount.objects.exists()


def test_a_dn_template_login_escapes_the_username(settings, slapd):
    ldap_settings_for(
        settings,
        slapd,
        GATEHOUSE_LDAP_BIND_DN="",
        GATEHOUSE_LDAP_BIND_PASSWORD="",
        GATEHOUSE_LDAP_USER_DN_TEMPLATE=f"uid={{username}},{slapd.people_base}",
    )
    assert authenticate(None, username="carol", password="carol-pass").username == "carol"
    assert authenticate(None, username="carol,ou=people", password="carol-pass") is None


def test_a_local_account_logs_in_locally_even_with_ldap_configured(settings, slapd):
    make_user("root", is_admin=True)
    ldap_settings_for(settings, slapd, GATEHOUSE_LDAP_URL="ldaps://127.0.0.1:1")

    assert authenticate(None, username="root", password=PASSWORD).username == "root"


def test_an_unreachable_directory_refuses_without_counting_a_failure(settings, slapd):
    ldap_settings_for(settings, slapd, GATEHOUSE_LDAP_URL="ldaps://127.0.0.1:1")

    with pytest.raises(LoginUnavailable):
        authenticate(None, username="alice", password="alice-pass")
    from accounts.models import LoginFailure

    assert not LoginFailure.objects.exists()


def test_a_directory_name_a_local_account_has_cannot_take_it_over(ldap_settings):
    make_user("dave")

    assert authenticate(None, username="dave", password="dave-pass") is None
    assert not DirectoryAccount.objects.exists()


def test_mapping_a_group_sets_the_team_and_hand_edits_are_refused(ldap_settings, admin):
    ci = team_create(actor=admin, name="ci")
    authenticate(None, username="alice", password="alice-pass")
    authenticate(None, username="carol", password="carol-pass")

    services.group_mapping_create(
        actor=admin, source="ldap", group="cn=ci,ou=groups,dc=example,dc=org", team=ci
    )

    assert members("ci") == {"alice"}
    from accounts.services import MembershipOwned, team_member_add

    with pytest.raises(MembershipOwned):
        team_member_add(actor=admin, team=ci, user=User.objects.get(username="carol"))


def test_a_sync_follows_the_directory(ldap_people_settings, slapd_people, admin):
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="ldap", group="ci", team=ci)
    for name in ("alice", "bob", "carol"):
        authenticate(None, username=name, password=f"{name}-pass")
    assert members("ci") == {"alice", "bob"}

    slapd_people.remove_from_group("bob", "ci")
    slapd_people.disable("alice")
    slapd_people.add_to_group("carol", "ci")
    preview = services.directory_sync(trigger=SyncRun.Trigger.MANUAL, dry_run=True)
    assert members("ci") == {"alice", "bob"}
    assert {str(change) for change in preview.changes} >= {
        "deactivate alice (disabled in the directory)",
        "remove bob from ci",
        "add carol to ci",
    }

    result = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert result.run.outcome == SyncRun.Outcome.APPLIED
    assert members("ci") == {"carol"}
    assert not User.objects.get(username="alice").is_active
    assert AuditEntry.objects.filter(
        action="membership.removed", actor_name="directory", target_id="ci"
    ).exists()

    slapd_people.enable("alice")
    services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    assert User.objects.get(username="alice").is_active
    assert members("ci") == {"alice", "carol"}


def test_an_unreachable_directory_changes_nothing(ldap_people_settings, slapd_people, admin):
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="ldap", group="ci", team=ci)
    authenticate(None, username="alice", password="alice-pass")
    slapd_people.stop()

    result = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert result.run.outcome == SyncRun.Outcome.UNREACHABLE
    assert result.run.error
    assert members("ci") == {"alice"}
    assert User.objects.get(username="alice").is_active


def test_a_directory_that_lists_nobody_is_not_read_as_everyone_leaving(
    ldap_settings, settings, admin
):
    authenticate(None, username="alice", password="alice-pass")
    settings.GATEHOUSE_LDAP_USER_FILTER = "(objectClass=device)"

    result = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert result.run.outcome == SyncRun.Outcome.REFUSED
    assert User.objects.get(username="alice").is_active


def test_a_team_a_mapping_names_cannot_be_deleted(ldap_settings, admin):
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="ldap", group="ci", team=ci)
    from accounts.services import TeamInUse, team_delete

    with pytest.raises(TeamInUse):
        team_delete(actor=admin, team=ci)
    assert Team.objects.filter(name="ci").exists()


def test_directory_logins_lock_out_like_local_ones(ldap_settings, settings):
    from accounts.services import LoginLocked

    for _ in range(settings.GATEHOUSE_LOGIN_MAX_FAILURES):
        assert authenticate(None, username="bob", password="not-bobs") is None

    with pytest.raises(LoginLocked):
        authenticate(None, username="bob", password="bob-pass")


def test_no_password_reaches_the_logs_or_the_audit(ldap_settings, settings, caplog):
    caplog.set_level("DEBUG")
    authenticate(None, username="alice", password="alice-pass")
    authenticate(None, username="alice", password="wrong-secret-typed")
    settings.GATEHOUSE_LDAP_URL = "ldaps://127.0.0.1:1"
    with pytest.raises(LoginUnavailable):
        authenticate(None, username="alice", password="alice-pass")

    recorded = caplog.text + repr(list(AuditEntry.objects.values()))
    for secret in ("alice-pass", "wrong-secret-typed", settings.GATEHOUSE_LDAP_BIND_PASSWORD):
        assert secret not in recorded


def test_metrics_say_when_the_directory_was_last_read_and_whether_it_fails(
    ldap_people_settings, slapd_people, admin, client
):
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, float]:
        client.force_login(admin)
        body = client.get("/metrics").content.decode()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if sample.name.startswith("gatehouse_directory")
        }

    services.directory_sync(trigger=SyncRun.Trigger.MANUAL)
    healthy = scrape()
    assert healthy["gatehouse_directory_sync_failing"] == 0
    assert healthy["gatehouse_directory_last_sync_timestamp_seconds"] > 0

    slapd_people.stop()
    services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    failing = scrape()
    assert failing["gatehouse_directory_sync_failing"] == 1
    assert (
        failing["gatehouse_directory_last_sync_timestamp_seconds"]
        == (healthy["gatehouse_directory_last_sync_timestamp_seconds"])
    )


def test_a_few_leavers_are_always_deactivated_unattended(ldap_settings, settings):
    """Three of four leaving is 75 %, but under the floor of people a scheduled sync may
    always deactivate: a small team's leavers are never held back."""
    for name in ("alice", "bob", "carol", "dave"):
        authenticate(None, username=name, password=f"{name}-pass")
    settings.GATEHOUSE_LDAP_USER_FILTER = "(&(objectClass=inetOrgPerson)(uid=alice))"

    scheduled = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert scheduled.run.outcome == SyncRun.Outcome.APPLIED
    assert [c.kind for c in scheduled.changes].count("deactivate") == 3


def test_the_unattended_limit_applies_above_the_floor(ldap_settings, settings, monkeypatch):
    for name in ("alice", "bob", "carol", "dave"):
        authenticate(None, username=name, password=f"{name}-pass")
    settings.GATEHOUSE_LDAP_USER_FILTER = "(&(objectClass=inetOrgPerson)(uid=alice))"
    monkeypatch.setattr(services, "MIN_DEACTIVATIONS_REFUSED", 1)

    scheduled = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert scheduled.run.outcome == SyncRun.Outcome.REFUSED
    assert "3 of 4 active users" in scheduled.run.error
    assert User.objects.filter(is_active=True).count() == 4

    by_hand = services.directory_sync(trigger=SyncRun.Trigger.MANUAL)

    assert by_hand.run.outcome == SyncRun.Outcome.APPLIED
    assert set(User.objects.filter(is_active=True).values_list("username", flat=True)) == {"alice"}


def test_a_directory_user_gets_an_api_token_from_their_profile_and_notary_takes_it(
    ldap_settings,
):
    """No password of theirs is Gatehouse's: their profile offers a token instead of a
    password form, and the token is what they give Notary's token service."""
    import base64

    client = Client()
    assert (
        client.post("/login/", {"username": "carol", "password": "carol-pass"}).status_code == 302
    )

    profile = client.get("/profile/").content.decode()
    assert "Change password" not in profile
    assert "holds your password" in profile

    page = client.post("/profile/token/").content.decode()
    token = page.split('id="new-token">')[1].split("<")[0]
    basic = base64.b64encode(f"carol:{token}".encode()).decode()
    answer = Client().get(
        "/auth/token", {"service": "notary-server"}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["token"]


def test_nobody_sets_a_password_for_a_directory_user_in_gatehouse(ldap_settings, admin):
    from django.core.exceptions import ValidationError

    from accounts.services import user_password_change

    carol = authenticate(None, username="carol", password="carol-pass")

    with pytest.raises(ValidationError, match="directory checks the password"):
        user_password_change(actor=admin, user=carol, new_password="a-long-new-password-9")
    carol.refresh_from_db()
    assert not carol.has_usable_password()


def test_an_admins_deactivation_is_never_undone_by_the_directory(
    ldap_people_settings, slapd_people, admin
):
    from accounts.services import user_deactivate, user_reactivate

    authenticate(None, username="alice", password="alice-pass")
    slapd_people.disable("alice")
    services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    alice = User.objects.get(username="alice")
    assert not alice.is_active
    user_reactivate(actor=admin, user=alice)
    slapd_people.enable("alice")

    user_deactivate(actor=admin, user=alice)

    assert authenticate(None, username="alice", password="alice-pass") is None
    services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    assert not User.objects.get(username="alice").is_active


@pytest.mark.parametrize("spelling", ["bob ", " bob", "\uff42\uff4f\uff42", "BOB\t"])
def test_another_spelling_of_a_name_neither_logs_in_nor_escapes_the_lockout(
    ldap_settings, settings, spelling
):
    from accounts.services import LoginLocked

    assert authenticate(None, username=spelling, password="bob-pass") is None
    for _ in range(settings.GATEHOUSE_LOGIN_MAX_FAILURES):
        authenticate(None, username="bob", password="not-bobs")
    with pytest.raises(LoginLocked):
        authenticate(None, username="Bob", password="bob-pass")
    assert authenticate(None, username=spelling, password="bob-pass") is None


@pytest.mark.parametrize("password", ["alice\tpass", "bell\x07", "\ufffe"])
def test_a_password_ldap_cannot_carry_is_a_wrong_password_not_an_outage(ldap_settings, password):
    from accounts.models import LoginFailure

    assert authenticate(None, username="alice", password=password) is None
    assert LoginFailure.objects.filter(username="alice").count() == 1


def test_a_mapped_group_the_directory_does_not_list_empties_no_team_unattended(
    ldap_settings, settings, admin
):
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="ldap", group="ci", team=ci)
    authenticate(None, username="alice", password="alice-pass")
    settings.GATEHOUSE_LDAP_GROUP_BASE = settings.GATEHOUSE_LDAP_USER_BASE

    scheduled = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert scheduled.run.outcome == SyncRun.Outcome.REFUSED
    assert "ci (team ci)" in scheduled.run.error
    assert members("ci") == {"alice"}

    by_hand = services.directory_sync(trigger=SyncRun.Trigger.MANUAL)

    assert by_hand.run.outcome == SyncRun.Outcome.APPLIED
    assert members("ci") == set()


def test_the_audit_log_keeps_what_syncs_changed_not_every_scheduled_sync(
    ldap_people_settings, slapd_people
):
    authenticate(None, username="alice", password="alice-pass")

    def sync_entries() -> list[str]:
        return list(
            AuditEntry.objects.filter(action__startswith="directory.sync_")
            .order_by("pk")
            .values_list("action", flat=True)
        )

    for _ in range(2):
        services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    slapd_people.stop()
    for _ in range(2):
        services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    slapd_people.start()
    services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)
    slapd_people.disable("alice")
    services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert sync_entries() == [
        "directory.sync_applied",  # the first
        "directory.sync_unreachable",  # failing starts
        "directory.sync_applied",  # and stops
        "directory.sync_applied",  # alice deactivated
    ]
    assert SyncRun.objects.count() == 6
