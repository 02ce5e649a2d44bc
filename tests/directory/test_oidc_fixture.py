"""The test OpenID Connect provider behaves as a real one: what the directory tests rely on."""

import secrets
import time
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, RSAKey

from devtools.oidc import OidcProvider
from devtools.ports import free_port
from tests.directory.oidc_fixtures import (
    ALICE,
    CAROL,
    GATEHOUSE_CLIENT_ID,
    OTHER_CLIENT_ID,
    ProviderLoginRefused,
    authorization_code_login,
    pkce_pair,
    provider_login,
    token_request,
)


def callback_uri(host: str = "127.0.0.1") -> str:
    """A redirect URI on a port the provider has never seen, as a test's live server has."""
    return f"http://{host}:{free_port()}/oidc/callback/"


def provider_keys(provider: OidcProvider) -> KeySet:
    response = requests.get(f"{provider.issuer}/jwks", verify=provider.verify, timeout=10)
    response.raise_for_status()
    return KeySet.import_key_set(response.json())


def verified_claims(provider: OidcProvider, id_token: str, audience: str) -> dict[str, Any]:
    token = jwt.decode(id_token, provider_keys(provider), algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": audience},
    ).validate(token.claims)
    return token.claims


def sign_in(provider: OidcProvider, client_id: str, user=ALICE, host: str = "127.0.0.1"):
    """The whole code flow with PKCE; returns the token response and the nonce sent."""
    verifier, challenge = pkce_pair()
    nonce = secrets.token_urlsafe(16)
    redirect_uri = callback_uri(host)
    code = authorization_code_login(
        provider, client_id, redirect_uri, user.username, user.password, nonce, challenge
    )
    return token_request(provider, client_id, code, redirect_uri, verifier), nonce


def test_discovery_is_served_over_tls_that_only_the_ca_file_verifies(oidc_provider):
    url = f"{oidc_provider.issuer}/.well-known/openid-configuration"
    assert oidc_provider.issuer.startswith("https://127.0.0.1:")

    discovery = requests.get(url, verify=str(oidc_provider.ca_file), timeout=10).json()

    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "profile", "email", "groups"} <= set(discovery["scopes_supported"])
    assert discovery["end_session_endpoint"] == f"{oidc_provider.issuer}/session/end"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)


def test_code_flow_gives_an_id_token_with_groups_username_and_nonce(oidc_provider):
    tokens, nonce = sign_in(oidc_provider, GATEHOUSE_CLIENT_ID, host="localhost")

    claims = verified_claims(oidc_provider, tokens["id_token"], GATEHOUSE_CLIENT_ID)
    assert claims["sub"] == ALICE.sub
    assert claims["nonce"] == nonce
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == "Alice Liddell"
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["ci", "everyone"]


def test_each_user_gets_their_own_groups(oidc_provider):
    tokens, _ = sign_in(oidc_provider, GATEHOUSE_CLIENT_ID, user=CAROL)

    claims = verified_claims(oidc_provider, tokens["id_token"], GATEHOUSE_CLIENT_ID)
    assert (claims["preferred_username"], claims["groups"]) == ("carol", ["security"])


def test_the_other_client_gets_tokens_for_itself_not_for_gatehouse(oidc_provider):
    tokens, _ = sign_in(oidc_provider, OTHER_CLIENT_ID)

    claims = verified_claims(oidc_provider, tokens["id_token"], OTHER_CLIENT_ID)
    assert claims["aud"] == OTHER_CLIENT_ID
    with pytest.raises(JoseError):
        verified_claims(oidc_provider, tokens["id_token"], GATEHOUSE_CLIENT_ID)


def test_wrong_password_yields_no_code(oidc_provider):
    _, challenge = pkce_pair()

    with pytest.raises(ProviderLoginRefused, match="form again"):
        authorization_code_login(
            oidc_provider, GATEHOUSE_CLIENT_ID, callback_uri(), "alice", "not-her-password",
            "nonce", challenge,
        )  # fmt: skip


def test_a_redirect_uri_off_loopback_is_refused(oidc_provider):
    _, challenge = pkce_pair()

    with pytest.raises(ProviderLoginRefused, match="400"):
        authorization_code_login(
            oidc_provider, GATEHOUSE_CLIENT_ID, "http://attacker.example/oidc/callback/",
            ALICE.username, ALICE.password, "nonce", challenge,
        )  # fmt: skip


def test_a_code_is_bound_to_its_pkce_verifier(oidc_provider):
    _, challenge = pkce_pair()
    redirect_uri = callback_uri()
    code = authorization_code_login(
        oidc_provider, GATEHOUSE_CLIENT_ID, redirect_uri, ALICE.username, ALICE.password,
        "nonce", challenge,
    )  # fmt: skip
    other_verifier, _ = pkce_pair()

    with pytest.raises(requests.HTTPError, match="400"):
        token_request(oidc_provider, GATEHOUSE_CLIENT_ID, code, redirect_uri, other_verifier)


def test_rotated_keys_leave_the_jwks_and_stop_verifying(oidc_provider):
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "sub": ALICE.sub, "iat": now, "exp": now + 300}
    header = {"alg": "RS256", "kid": oidc_provider.signing_jwk["kid"]}
    forged = jwt.encode(header, claims, RSAKey.import_key(oidc_provider.signing_jwk))
    assert jwt.decode(forged, provider_keys(oidc_provider)).claims["sub"] == ALICE.sub

    old_key = oidc_provider.rotate_keys()

    assert old_key["kid"] == header["kid"]
    kids = [key.kid for key in provider_keys(oidc_provider)]
    assert kids == [oidc_provider.signing_jwk["kid"]]
    assert old_key["kid"] not in kids
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(forged, provider_keys(oidc_provider))
    tokens, _ = sign_in(oidc_provider, GATEHOUSE_CLIENT_ID)
    assert verified_claims(oidc_provider, tokens["id_token"], GATEHOUSE_CLIENT_ID)["sub"]


@pytest.mark.browser
def test_a_browser_signs_in_on_the_providers_page(oidc_provider, chromium):
    context = chromium.new_context(ignore_https_errors=True)
    page = context.new_page()
    redirect_uri = callback_uri()
    page.route(f"{redirect_uri}**", lambda route: route.fulfill(body="signed in"))
    _, challenge = pkce_pair()
    page.goto(
        f"{oidc_provider.issuer}/auth?response_type=code&client_id={GATEHOUSE_CLIENT_ID}"
        f"&redirect_uri={redirect_uri}&scope=openid+groups&state=s1&nonce=n1"
        f"&code_challenge={challenge}&code_challenge_method=S256"
    )

    provider_login(page, "alice", "wrong")
    assert page.get_by_role("alert").inner_text() == "Invalid username or password."
    provider_login(page, "alice", ALICE.password)

    page.wait_for_url(f"{redirect_uri}?code=*")
    assert "state=s1" in page.url
    context.close()
