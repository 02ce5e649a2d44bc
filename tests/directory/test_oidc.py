"""OpenID Connect sign-in against a real provider (oidc-provider on Node), in Chromium."""

import secrets

import pytest
from django.test import RequestFactory

from accounts.models import Membership, User
from accounts.services import team_create
from directory import oidc, services
from directory.models import DirectoryAccount
from tests.directory.oidc_fixtures import (
    GATEHOUSE_CLIENT_ID,
    OTHER_CLIENT_ID,
    authorization_code_login,
    pkce_pair,
    provider_login,
    token_request,
)

REDIRECT_URI = "http://127.0.0.1:8000/oidc/callback/"


@pytest.fixture
def oidc_settings(settings, oidc_provider):
    client = oidc_provider.client(GATEHOUSE_CLIENT_ID)
    settings.GATEHOUSE_OIDC_ISSUER = oidc_provider.issuer
    settings.GATEHOUSE_OIDC_CLIENT_ID = client.client_id
    settings.GATEHOUSE_OIDC_CLIENT_SECRET = client.client_secret
    settings.GATEHOUSE_OIDC_CA_FILE = str(oidc_provider.ca_file)
    settings.GATEHOUSE_OIDC_NAME = "Example SSO"
    return settings


def tokens_for(provider, client_id: str, *, nonce: str) -> dict:
    verifier, challenge = pkce_pair()
    code = authorization_code_login(
        provider, client_id, REDIRECT_URI, "alice", "wonderland", nonce, challenge
    )
    return token_request(provider, client_id, code, REDIRECT_URI, verifier)


def claims_of(tokens: dict, *, nonce: str) -> dict:
    return oidc.token_claims(oidc.client(), tokens, nonce=nonce)


@pytest.mark.browser
def test_sign_in_with_the_provider_in_a_browser_and_log_out(
    oidc_settings, chromium, live_server, transactional_db, admin
):
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="oidc", group="ci", team=ci)
    context = chromium.new_context(base_url=live_server.url, ignore_https_errors=True)
    page = context.new_page()
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/oidc/callback/" in r.url else None)

    page.goto("/login/")
    page.get_by_role("link", name="Sign in with Example SSO").click()
    provider_login(page, "alice", "wonderland")
    page.wait_for_url(f"{live_server.url}/")

    alice = User.objects.get(username="alice")
    assert (alice.full_name, alice.email) == ("Alice Liddell", "alice@example.com")
    assert DirectoryAccount.objects.get(user=alice).source == "oidc"
    assert Membership.objects.filter(team=ci, user=alice).exists()
    assert page.get_by_text("alice").first.is_visible()

    page.get_by_role("button", name="Log out").click()
    page.goto("/profile/")
    assert "/login/" in page.url

    # The provider's answer cannot be used twice: its state went with the first use.
    page.goto(callbacks[-1])
    assert "/login/" in page.url
    assert page.get_by_text("refused").first.is_visible()
    page.goto("/profile/")
    assert "/login/" in page.url
    context.close()


def test_an_id_token_verifies_with_its_own_nonce(oidc_settings, oidc_provider, db):
    nonce = secrets.token_urlsafe(16)
    claims = claims_of(tokens_for(oidc_provider, GATEHOUSE_CLIENT_ID, nonce=nonce), nonce=nonce)

    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["ci", "everyone"]


def test_an_id_token_for_another_client_is_refused(oidc_settings, oidc_provider, db):
    nonce = secrets.token_urlsafe(16)
    tokens = tokens_for(oidc_provider, OTHER_CLIENT_ID, nonce=nonce)

    with pytest.raises(oidc.SignInFailed, match="aud"):
        claims_of(tokens, nonce=nonce)


def test_an_id_token_with_an_old_nonce_is_refused(oidc_settings, oidc_provider, db):
    old_nonce = secrets.token_urlsafe(16)
    tokens = tokens_for(oidc_provider, GATEHOUSE_CLIENT_ID, nonce=old_nonce)

    with pytest.raises(oidc.SignInFailed, match="nonce"):
        claims_of(tokens, nonce=secrets.token_urlsafe(16))


def test_an_id_token_signed_by_a_key_the_provider_rotated_away_is_refused(
    oidc_settings, oidc_provider, db
):
    nonce = secrets.token_urlsafe(16)
    tokens = tokens_for(oidc_provider, GATEHOUSE_CLIENT_ID, nonce=nonce)
    assert claims_of(tokens, nonce=nonce)["sub"]

    oidc_provider.rotate_keys()

    with pytest.raises(oidc.SignInFailed):
        claims_of(tokens, nonce=nonce)


def test_a_callback_without_a_sign_in_of_this_session_is_refused(oidc_settings, db):
    request = RequestFactory().get("/oidc/callback/", {"code": "x", "state": "forged"})
    request.session = {}

    with pytest.raises(oidc.SignInFailed):
        oidc.verified_claims(request)


def test_groups_from_a_sign_in_expire_so_a_leaver_leaves_within_a_bounded_time(settings, admin, db):
    """The provider cannot be asked who left: a sign-in's groups count for
    GATEHOUSE_OIDC_GROUPS_SECONDS, after which a sync takes the user out of mapped teams
    until they sign in again."""
    import datetime as dt

    from django.utils import timezone

    from directory.models import SyncRun

    settings.GATEHOUSE_OIDC_ISSUER = "https://sso.example.org"
    settings.GATEHOUSE_OIDC_GROUPS_SECONDS = 3600
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="oidc", group="ci", team=ci)

    def sign_in() -> User:
        return services.oidc_login(
            issuer="https://sso.example.org",
            subject="7f3c-alice",
            username="alice",
            full_name="Alice",
            email="",
            groups=frozenset({"ci"}),
        )

    alice = sign_in()
    assert services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE).changes == []
    assert Membership.objects.filter(team=ci, user=alice).exists()

    DirectoryAccount.objects.filter(user=alice).update(
        seen_at=timezone.now() - dt.timedelta(seconds=3601)
    )
    result = services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE)

    assert [str(change) for change in result.changes] == ["remove alice from ci"]
    assert not Membership.objects.filter(team=ci, user=alice).exists()
    assert User.objects.get(username="alice").is_active

    sign_in()
    assert Membership.objects.filter(team=ci, user=alice).exists()


def test_an_issuer_configured_other_than_the_provider_writes_it_is_refused(
    oidc_settings, oidc_provider, db
):
    oidc_settings.GATEHOUSE_OIDC_ISSUER = oidc_provider.issuer + "/"

    with pytest.raises(oidc.SignInFailed, match="another issuer"):
        oidc.provider_check()
