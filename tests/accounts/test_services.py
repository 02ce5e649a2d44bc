import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import ApiToken, Membership, Team, User
from accounts.selectors import api_token_lookup, team_list, user_list
from tests.factories import PASSWORD, make_team, make_user

pytestmark = pytest.mark.django_db


def test_user_create_hashes_the_password_and_refuses_a_weak_one():
    user = services.user_create(actor=None, username="jenkins", password=PASSWORD)
    assert user.check_password(PASSWORD)
    assert PASSWORD not in user.password

    with pytest.raises(ValidationError) as error:
        services.user_create(actor=None, username="weak", password="123")
    assert "password" in error.value.message_dict
    assert not User.objects.filter(username="weak").exists()


@pytest.mark.parametrize("username", ["has space", "semi;colon", "x" * 151, ""])
def test_user_create_refuses_invalid_usernames(username):
    with pytest.raises(ValidationError) as error:
        services.user_create(actor=None, username=username, password=PASSWORD)
    assert "username" in error.value.message_dict


def test_user_create_refuses_a_duplicate_username():
    make_user("jenkins")
    with pytest.raises(ValidationError) as error:
        services.user_create(actor=None, username="jenkins", password=PASSWORD)
    assert "username" in error.value.message_dict
    assert User.objects.filter(username="jenkins").count() == 1


@pytest.mark.parametrize(
    "name", ["CI", "-ci", "_ci", "c i", "c/i", "releases", "new", "a" * 65, "", "ci.team"]
)
def test_team_names_must_be_valid_notary_role_names(admin, name):
    with pytest.raises(ValidationError) as error:
        services.team_create(actor=admin, name=name)
    assert "name" in error.value.message_dict
    assert not Team.objects.exists()


@pytest.mark.parametrize("name", ["ci", "a", "0ops", "dev-team_2", "a" * 64])
def test_team_names_accept_the_notary_role_syntax(admin, name):
    assert services.team_create(actor=admin, name=name).name == name


def test_membership_add_is_idempotent_and_remove_reports_whether_it_changed(admin, alice):
    team = make_team("ci", actor=admin)
    assert services.team_member_add(actor=admin, team=team, user=alice)[1] is True
    assert services.team_member_add(actor=admin, team=team, user=alice)[1] is False
    assert list(team.members.all()) == [alice]
    assert services.team_member_remove(actor=admin, team=team, user=alice) is True
    assert services.team_member_remove(actor=admin, team=team, user=alice) is False
    assert not Membership.objects.exists()


def test_a_deactivated_user_cannot_be_added_to_a_team(admin, alice):
    team = make_team("ci", actor=admin)
    services.user_deactivate(actor=admin, user=alice)
    with pytest.raises(ValidationError):
        services.team_member_add(actor=admin, team=team, user=alice)
    assert not team.members.exists()


def test_deactivation_keeps_memberships_and_revokes_tokens(admin, alice):
    team = make_team("ci", members=(alice,), actor=admin)
    raw_token, _ = services.api_token_create(user=alice)

    services.user_deactivate(actor=admin, user=alice)

    alice.refresh_from_db()
    assert alice.is_active is False
    assert list(team.members.all()) == [alice]
    assert api_token_lookup(raw_token=raw_token) is None
    services.user_reactivate(actor=admin, user=alice)
    assert User.objects.get(username="alice").is_active is True


def test_admins_cannot_deactivate_themselves_nor_remove_the_last_admin(admin):
    with pytest.raises(ValidationError):
        services.user_deactivate(actor=admin, user=admin)
    with pytest.raises(ValidationError):
        services.user_update(actor=admin, user=admin, is_admin=False)
    admin.refresh_from_db()
    assert admin.is_active
    assert admin.is_admin

    other = make_user("second", is_admin=True)
    services.user_update(actor=other, user=admin, is_admin=False)
    assert User.objects.get(username="root").is_admin is False


def test_password_change_needs_the_old_password_from_the_user_but_not_from_an_admin(admin, alice):
    with pytest.raises(ValidationError) as error:
        services.user_password_change(
            actor=alice, user=alice, old_password="wrong", new_password="a-new-long-passphrase"
        )
    assert "old_password" in error.value.message_dict

    kept, kept_token = services.api_token_create(user=alice)
    other, _ = services.api_token_create(user=alice)
    services.user_password_change(
        actor=alice,
        user=alice,
        old_password=PASSWORD,
        new_password="a-new-long-passphrase",
        keep_token=kept_token,
    )
    assert api_token_lookup(raw_token=kept) is not None
    assert api_token_lookup(raw_token=other) is None

    services.user_password_change(actor=admin, user=alice, new_password="admin-chosen-passphrase")
    alice.refresh_from_db()
    assert alice.check_password("admin-chosen-passphrase")


def test_tokens_are_stored_as_digests_and_expire(alice, settings):
    raw_token, token = services.api_token_create(user=alice)
    assert raw_token not in {token.digest, str(token.pk)}
    assert api_token_lookup(raw_token=raw_token) == token

    ApiToken.objects.filter(pk=token.pk).update(expires_at=token.created_at)
    assert api_token_lookup(raw_token=raw_token) is None


def test_selectors_scope_what_a_non_admin_sees(admin, alice):
    bob = make_user("bob")
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", members=(bob,), actor=admin)

    assert list(user_list(viewer=alice)) == [alice]
    assert {u.username for u in user_list(viewer=admin)} == {"root", "alice", "bob"}
    assert [t.name for t in team_list(viewer=alice)] == ["ci"]
    assert [t.name for t in team_list(viewer=admin)] == ["ci", "ops"]


def test_a_looked_up_token_is_the_stored_token_with_its_user_loaded(alice):
    """The written-out lookup gives what the ORM would, the user included, and no query
    more when its fields are read."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def columns(instance) -> dict:
        return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}

    raw_token, _ = services.api_token_create(user=alice)
    with CaptureQueriesContext(connection) as queries:
        token = api_token_lookup(raw_token=raw_token)
        fields = columns(token), columns(token.user)
    assert len(queries) == 1
    stored = ApiToken.objects.select_related("user").get(pk=token.pk)
    assert fields == (columns(stored), columns(stored.user))
    assert (token.created_at, token.expires_at) == (stored.created_at, stored.expires_at)
    assert token.expires_at.tzinfo is not None
    assert token.user.is_active is True
    assert token.user.check_password(PASSWORD)
    assert not token._state.adding


def test_revoked_tokens_and_inactive_users_find_nothing(alice):
    revoked, token = services.api_token_create(user=alice)
    services.api_token_revoke(token=token)
    assert api_token_lookup(raw_token=revoked) is None
    live, _ = services.api_token_create(user=alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert api_token_lookup(raw_token=live) is None
    assert api_token_lookup(raw_token="not-a-token") is None
