"""Where a login lands: ``next`` as asked, except a POST-only action (a form posted after
the session expired), which lands on the nearest page above it that answers GET."""

import pytest
from django.urls import resolve

from bundles.services import bundle_issue
from gatehouse.views import accepts_get, landing_page
from tests.factories import PASSWORD, make_team
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db


def log_in(client, username: str, next_url: str):
    return client.post(
        f"/login/?next={next_url}", {"username": username, "password": PASSWORD}, follow=True
    )


def test_a_post_that_met_an_expired_session_lands_on_the_page_above_it(client, admin, alice):
    make_team("ci", members=(alice,), actor=admin)
    action = "/teams/ci/members/alice/remove/"

    expired = client.post(action)  # no session: sent to log in, nothing done
    assert expired["Location"] == f"/login/?next={action}"
    landed = log_in(client, "root", action)

    assert landed.redirect_chain == [("/teams/ci/", 302)]
    assert landed.status_code == 200
    assert landed.resolver_match.view_name == "teams:detail"


def test_an_action_with_no_page_above_it_lands_on_the_dashboard(client, alice):
    key = bundle_issue(user=alice).key
    action = f"/keys/{key.id}/revoke/"

    assert client.post(action)["Location"] == f"/login/?next={action}"
    landed = log_in(client, "alice", action)

    assert landed.redirect_chain == [("/", 302)]
    assert landed.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is None


def test_a_signed_in_user_sent_to_log_in_with_an_action_lands_on_a_page(client, admin):
    client.force_login(admin)
    response = client.get("/login/?next=/users/alice/deactivate/")
    assert response.status_code == 302
    assert response["Location"] == "/users/alice/"


def test_pages_and_unknown_urls_are_kept_as_asked(client, admin):
    repository, _ = repository_create(actor=admin, gun="registry.example.com/ci/app")
    confirm = f"/repositories/{repository.pk}/delete/"  # answers GET: its confirmation page
    assert log_in(client, "root", confirm).redirect_chain == [(confirm, 302)]
    client.logout()
    page = "/teams/?search=ci"
    assert log_in(client, "root", page).redirect_chain == [(page, 302)]
    assert landing_page("/no/such/page/") == "/no/such/page/"


def test_a_next_to_another_site_still_lands_on_the_dashboard(client, admin):
    landed = log_in(client, "root", "https://evil.example/users/")
    assert landed.redirect_chain == [("/", 302)]


@pytest.mark.parametrize(
    ("path", "answers_get"),
    [
        ("/keys/0/revoke/", False),  # require_POST outside login_required
        ("/teams/ci/members/", False),  # require_POST outside admin_required
        ("/profile/bundle/", False),
        ("/teams/ci/", True),  # require_safe
        ("/content-trust/", True),  # GET, HEAD and POST
        ("/login/", True),  # a class-based view
        ("/profile/", True),  # no method decorator
        ("/api/v1/auth/logout/", False),  # an API view with post alone
    ],
)
def test_accepts_get_reads_the_views_methods(path, answers_get):
    assert accepts_get(resolve(path).func) is answers_get
