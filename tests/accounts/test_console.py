"""The identity console as a browser user meets it: pages, forms, errors and messages."""

import pytest
from django.contrib.auth import SESSION_KEY

from accounts.models import Membership, Team, User
from tests.factories import PASSWORD, make_team, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase"


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def as_alice(client, admin, alice):
    """alice is in team ci but not in ops."""
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", members=(make_user("bob"),), actor=admin)
    client.force_login(alice)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def new_user_form(**overrides: str) -> dict[str, str]:
    return {
        "username": "jenkins",
        "full_name": "Jenkins CI",
        "email": "jenkins@example.com",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
        **overrides,
    }


@pytest.mark.parametrize(
    "path", ["/", "/users/", "/users/new/", "/teams/", "/teams/ci/", "/profile/", "/jobs/"]
)
def test_anonymous_visitor_is_sent_to_log_in(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_login_page_signs_in_and_lands_on_dashboard(client, alice):
    response = client.post("/login/", {"username": "alice", "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == "/"
    assert "Welcome, Alice Liddell" in response.text


def test_logout_is_a_post_that_ends_the_session(as_alice):
    response = as_alice.post("/logout/", follow=True)

    assert response.redirect_chain[-1][0] == "/login/"
    assert as_alice.get("/").status_code == 302


@pytest.mark.parametrize(
    "path",
    ["/users/", "/users/new/", "/users/bob/", "/teams/new/", "/teams/ops/delete/", "/jobs/"],
)
def test_non_admin_gets_the_friendly_403_on_admin_pages(as_alice, path):
    response = as_alice.get(path)

    assert response.status_code == 403
    assert "You may not open this page" in response.text


def test_non_admin_cannot_post_admin_actions(as_alice):
    responses = [
        as_alice.post("/users/bob/deactivate/"),
        as_alice.post("/teams/ci/members/", {"username": "bob"}),
        as_alice.post("/teams/ci/members/alice/remove/"),
        as_alice.post("/teams/new/", {"name": "sneaky"}),
    ]

    assert [response.status_code for response in responses] == [403] * 4
    assert User.objects.get(username="bob").is_active
    assert list(Team.objects.get(name="ci").members.values_list("username", flat=True)) == ["alice"]
    assert not Team.objects.filter(name="sneaky").exists()


def test_non_admin_sidebar_has_dashboard_teams_repositories_and_profile(as_alice):
    response = as_alice.get("/")

    nav = response.text.split('<nav aria-label="Console">')[1].split("</nav>")[0]
    assert 'href="/"' in nav
    assert 'href="/teams/"' in nav
    assert 'href="/repositories/"' in nav  # the ones they sign
    assert 'href="/profile/"' in nav
    for hidden in ("/users/", "/content-trust/", "/jobs/", "/audit/"):
        assert f'href="{hidden}"' not in nav


def test_admin_sidebar_has_every_section(as_admin):
    response = as_admin.get("/")

    for section in ("/users/", "/teams/", "/repositories/", "/content-trust/", "/jobs/"):
        assert f'href="{section}"' in response.text


def test_non_admin_sees_only_their_teams(as_alice):
    response = as_alice.get("/teams/")

    assert response.status_code == 200
    assert 'href="/teams/ci/"' in response.text
    assert "/teams/ops/" not in response.text


def test_non_admin_gets_404_on_a_team_they_are_not_in(as_alice):
    response = as_alice.get("/teams/ops/")

    assert response.status_code == 404
    assert "Page not found" in response.text
    assert as_alice.get("/teams/ci/").status_code == 200


def test_member_sees_team_members_but_no_admin_forms(as_alice):
    response = as_alice.get("/teams/ci/")

    assert "Alice Liddell" in response.text
    assert "Add a member" not in response.text
    assert "/teams/ci/delete/" not in response.text
    assert "/members/alice/remove/" not in response.text


def test_profile_shows_own_details_and_teams_only(as_alice):
    response = as_alice.get("/profile/")

    assert "alice@example.com" in response.text
    assert 'href="/teams/ci/"' in response.text
    assert "/teams/ops/" not in response.text
    assert "bob" not in response.text


def test_dashboard_counts_users_and_teams(as_admin, admin, alice):
    make_team("ci", members=(alice, admin), actor=admin)
    make_team("ops", actor=admin)

    response = as_admin.get("/")

    assert response.context["user_count"] == 2
    assert response.context["team_count"] == 2
    assert [team.name for team in response.context["my_teams"]] == ["ci"]


def test_the_audit_section_is_built(as_admin):
    response = as_admin.get("/audit/")

    assert response.status_code == 200
    assert "Audit" in response.text
    assert response.templates[0].name == "audit/list.html"


def test_admin_creates_a_user_who_can_then_log_in(as_admin, client):
    response = as_admin.post("/users/new/", new_user_form(is_admin="on"), follow=True)

    assert response.redirect_chain[-1][0] == "/users/jenkins/"
    assert messages_of(response) == ["User jenkins created."]
    jenkins = User.objects.get(username="jenkins")
    assert (jenkins.full_name, jenkins.email, jenkins.is_admin) == (
        "Jenkins CI",
        "jenkins@example.com",
        True,
    )
    client.logout()
    assert client.login(username="jenkins", password=NEW_PASSWORD)


def test_usernames_with_punctuation_have_working_pages(as_admin):
    as_admin.post("/users/new/", new_user_form(username="ci.bot+1@example-org_x"))

    response = as_admin.get("/users/ci.bot+1@example-org_x/")

    assert response.status_code == 200
    assert "ci.bot+1@example-org_x" in response.text


def test_duplicate_username_is_a_form_error(as_admin, alice):
    response = as_admin.post("/users/new/", new_user_form(username="alice"))

    assert response.status_code == 200
    assert 'id="id_username_error"' in response.text
    assert "A user with that username already exists." in response.text
    assert User.objects.get(username="alice").full_name == "Alice Liddell"


def test_mismatched_passwords_create_nobody(as_admin):
    response = as_admin.post("/users/new/", new_user_form(password_confirm="something-else-1"))

    assert 'id="id_password_confirm_error"' in response.text
    assert "The two passwords do not match." in response.text
    assert not User.objects.filter(username="jenkins").exists()


def test_weak_password_is_rejected_by_the_validators(as_admin):
    response = as_admin.post("/users/new/", new_user_form(password="123", password_confirm="123"))

    assert 'id="id_password_error"' in response.text
    assert "This password is too short." in response.text
    assert not User.objects.filter(username="jenkins").exists()


def test_user_list_searches_username_name_and_email(as_admin, alice):
    make_user("bob", full_name="Bob Builder", email="bob@builders.test")

    def usernames(query: str) -> list[str]:
        page = as_admin.get("/users/", {"q": query}).context["page"]
        return [user.username for user in page.object_list]

    assert usernames("LIDDELL") == ["alice"]
    assert usernames("builders.test") == ["bob"]
    assert usernames("bo") == ["bob"]
    assert usernames("") == ["alice", "bob", "root"]
    assert "No user matches" in as_admin.get("/users/", {"q": "nobody"}).text


def test_user_list_pages_by_25_and_keeps_the_search(as_admin):
    for number in range(30):
        make_user(f"svc{number:02}")

    first = as_admin.get("/users/", {"q": "svc"})
    second = as_admin.get("/users/", {"q": "svc", "page": 2})

    assert len(first.context["page"].object_list) == 25
    assert 'href="?q=svc&amp;page=2"' in first.text
    assert [user.username for user in second.context["page"].object_list] == [
        f"svc{number}" for number in range(25, 30)
    ]


def test_admin_edits_a_users_details(as_admin, alice):
    response = as_admin.post(
        "/users/alice/edit/",
        {"full_name": "Alice Pleasance", "email": "ap@example.com", "is_admin": "on"},
        follow=True,
    )

    assert messages_of(response) == ["Details of alice saved."]
    alice.refresh_from_db()
    assert (alice.full_name, alice.email, alice.is_admin) == (
        "Alice Pleasance",
        "ap@example.com",
        True,
    )


def test_demoting_the_last_admin_is_refused_on_the_admin_field(as_admin, admin):
    response = as_admin.post("/users/root/edit/", {"full_name": "Root", "email": ""})

    assert 'id="id_is_admin_error"' in response.text
    assert "is the last active admin" in response.text
    admin.refresh_from_db()
    assert admin.is_admin
    assert admin.full_name == "Root Admin"


def test_admin_deactivates_and_reactivates_a_user(as_admin, alice, client):
    response = as_admin.post("/users/alice/deactivate/", follow=True)

    assert messages_of(response) == ["User alice deactivated."]
    assert "Inactive" in response.text
    assert not User.objects.get(username="alice").is_active

    response = as_admin.post("/users/alice/reactivate/", follow=True)

    assert messages_of(response) == ["User alice reactivated."]
    assert User.objects.get(username="alice").is_active


def test_deactivated_user_cannot_log_in(as_admin, alice):
    as_admin.post("/users/alice/deactivate/")
    as_admin.logout()

    response = as_admin.post("/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.text


def test_deactivating_yourself_is_an_error_on_the_page(as_admin, admin):
    response = as_admin.post("/users/root/deactivate/")

    assert response.status_code == 200
    assert "You cannot deactivate your own account." in response.text
    admin.refresh_from_db()
    assert admin.is_active


def test_admin_sets_another_users_password(as_admin, alice):
    response = as_admin.post(
        "/users/alice/password/",
        {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        follow=True,
    )

    assert messages_of(response) == ["Password of alice changed."]
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_admin_creates_a_team(as_admin):
    response = as_admin.post(
        "/teams/new/", {"name": "ci", "description": "Build pipelines"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/teams/ci/"
    assert messages_of(response) == ["Team ci created."]
    assert "each member signs in their own Notary role" in response.text
    assert Team.objects.get(name="ci").description == "Build pipelines"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Bad Name", "Team names are 1 to 64 characters"),
        ("releases", "is reserved"),
    ],
)
def test_invalid_team_name_is_a_form_error(as_admin, name, error):
    response = as_admin.post("/teams/new/", {"name": name})

    assert response.status_code == 200
    assert 'id="id_name_error"' in response.text
    assert error in response.text
    assert not Team.objects.exists()


def test_duplicate_team_name_is_a_form_error(as_admin, admin):
    make_team("ci", actor=admin)

    response = as_admin.post("/teams/new/", {"name": "ci"})

    assert "A team with that name already exists." in response.text
    assert Team.objects.count() == 1


def test_admin_adds_and_removes_a_member(as_admin, admin):
    make_team("ci", actor=admin)
    make_user("jenkins", full_name="Jenkins CI")

    response = as_admin.post("/teams/ci/members/", {"username": "jenkins"}, follow=True)

    assert messages_of(response) == ["jenkins added to ci."]
    assert [user.username for user in response.context["members"]] == ["jenkins"]
    assert 'href="/users/jenkins/"' in response.text
    assert Membership.objects.filter(team__name="ci", user__username="jenkins").exists()

    response = as_admin.post("/teams/ci/members/jenkins/remove/", follow=True)

    assert messages_of(response) == ["jenkins removed from ci."]
    assert "This team has no members yet." in response.text
    assert not Membership.objects.filter(team__name="ci").exists()


def test_add_member_offers_only_active_non_members(as_admin, admin, alice):
    make_team("ci", members=(alice,), actor=admin)
    make_user("jenkins")
    retired = make_user("retired")
    as_admin.post("/users/retired/deactivate/")

    options = as_admin.get("/teams/ci/").context["member_form"].fields["username"].queryset
    response = as_admin.post("/teams/ci/members/", {"username": retired.username})

    assert sorted(user.username for user in options) == ["jenkins", "root"]
    assert 'id="id_username_error"' in response.text
    assert "retired is not an active user outside this team." in response.text
    assert not Membership.objects.filter(user=retired).exists()


def test_admin_edits_a_team_description(as_admin, admin):
    make_team("ci", actor=admin)

    response = as_admin.post("/teams/ci/edit/", {"description": "Signs nightlies"}, follow=True)

    assert messages_of(response) == ["Team ci updated."]
    assert Team.objects.get(name="ci").description == "Signs nightlies"


def test_team_delete_asks_first_then_deletes(as_admin, admin, alice):
    make_team("ci", members=(alice,), actor=admin)

    confirmation = as_admin.get("/teams/ci/delete/")

    assert "Delete team" in confirmation.text
    assert "1 membership will be removed" in confirmation.text
    assert Team.objects.filter(name="ci").exists()

    response = as_admin.post("/teams/ci/delete/", follow=True)

    assert messages_of(response) == ["Team ci deleted."]
    assert not Team.objects.filter(name="ci").exists()
    assert User.objects.filter(username="alice").exists()


def test_profile_password_change_keeps_the_session(as_alice, alice):
    response = as_alice.post(
        "/profile/",
        {
            "old_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
        follow=True,
    )

    assert messages_of(response) == ["Your password has been changed."]
    assert as_alice.get("/profile/").status_code == 200
    assert as_alice.session[SESSION_KEY] == str(alice.pk)
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_profile_password_change_needs_the_current_password(as_alice, alice):
    response = as_alice.post(
        "/profile/",
        {
            "old_password": "not-my-password",
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )

    assert 'id="id_old_password_error"' in response.text
    assert "The current password is not correct." in response.text
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_every_post_form_carries_a_csrf_token(as_admin, admin, alice):
    make_team("ci", members=(alice,), actor=admin)

    for path in ("/users/alice/", "/users/new/", "/teams/ci/", "/teams/ci/delete/", "/profile/"):
        forms = as_admin.get(path).text.split('<form method="post"')[1:]
        assert forms, path
        for form in forms:
            assert 'name="csrfmiddlewaretoken"' in form.split("</form>")[0], path
