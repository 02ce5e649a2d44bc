"""A real OpenID Connect provider for tests, and ways to sign in at it.

``tests/conftest.py`` loads the fixtures for the whole suite. The module holds no
assertions, so PYTEST_DONT_REWRITE: a test module that imports its helpers before pytest
loads it as a plugin then draws no warning.

``oidc_provider`` (session scope) is oidc-provider over HTTPS on a free loopback port
(devtools/oidc.py): trust it with ``oidc_provider.ca_file``. A test that rotates its keys
leaves it rotated: later tests must fetch the JWKS, as a relying party does anyway.
Users: ``ALICE`` (groups ci, everyone) and ``CAROL`` (security). Clients: ``gatehouse``
(client_secret_basic) and ``other-client`` (client_secret_post, for a token whose ``aud``
is not Gatehouse). Both are registered as native clients with the redirect URIs of
``oidc_redirect_uris``: a loopback ``http`` redirect URI then matches on any port, so the
session's one provider serves every test's live server.
"""

import base64
import hashlib
import secrets
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from playwright.sync_api import Page

from devtools.oidc import OidcClient, OidcProvider, OidcUser, installed
from tests.conftest import require

GATEHOUSE_CLIENT_ID = "gatehouse"
OTHER_CLIENT_ID = "other-client"
SCOPES = "openid profile email groups"
ALICE = OidcUser(
    sub="7f3c0a52-alice",
    username="alice",
    password="wonderland",
    name="Alice Liddell",
    email="alice@example.com",
    groups=("ci", "everyone"),
)
CAROL = OidcUser(
    sub="a81d44e0-carol",
    username="carol",
    password="looking-glass",
    name="Carol Danvers",
    email="carol@example.com",
    groups=("security",),
)
MAX_REDIRECTS = 10


class ProviderLoginRefused(Exception):
    """The provider did not send the user back with a code: wrong password, or an error."""


@pytest.fixture(scope="session")
def oidc_redirect_uris() -> tuple[str, ...]:
    """Where the ``gatehouse`` client may be sent back to: any port on loopback."""
    return ("http://127.0.0.1/oidc/callback/", "http://localhost/oidc/callback/")


@pytest.fixture(scope="session")
def oidc_provider(oidc_redirect_uris: tuple[str, ...]) -> Iterator[OidcProvider]:
    require(shutil.which("node") is not None, "Node.js")
    require(
        installed(), "oidc-provider's packages (make test runs npm ci in devtools/oidc_provider)"
    )
    clients = [
        OidcClient(
            GATEHOUSE_CLIENT_ID,
            secrets.token_urlsafe(24),
            oidc_redirect_uris,
            any_loopback_port=True,
        ),
        OidcClient(
            OTHER_CLIENT_ID,
            secrets.token_urlsafe(24),
            oidc_redirect_uris,
            any_loopback_port=True,
            token_endpoint_auth_method="client_secret_post",
        ),
    ]
    provider = OidcProvider.ephemeral(clients, [ALICE, CAROL])
    try:
        provider.start()
        yield provider
    finally:
        provider.discard()


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``(code_verifier, code_challenge)`` for S256."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def provider_login(page: Page, username: str, password: str) -> None:
    """Sign in on the provider's page, where the application has sent the browser.

    The browser context must trust the provider's certificate (``ignore_https_errors``):
    Chromium takes no CA file.
    """
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def authorization_code_login(
    provider: OidcProvider,
    client_id: str,
    redirect_uri: str,
    username: str,
    password: str,
    nonce: str,
    code_challenge: str,
    *,
    scope: str = SCOPES,
) -> str:
    """Sign in as a browser would, without one; return the ``code`` sent to ``redirect_uri``.

    Raises ``ProviderLoginRefused`` when the provider shows its form again (wrong password)
    or sends back an error.
    """
    session = requests.Session()

    def send(method: str, url: str, **kwargs: Any) -> requests.Response:
        # verify= on each request: REQUESTS_CA_BUNDLE in the environment beats a session's own.
        return session.request(
            method, url, verify=provider.verify, allow_redirects=False, timeout=10, **kwargs
        )

    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    response = send("GET", f"{provider.issuer}/auth", params=query)
    signed_in = False
    for _ in range(MAX_REDIRECTS):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(redirect_uri):
                return _code_from(location, state)
            response = send("GET", location)
        elif response.status_code == 200 and urlsplit(response.url).path.startswith(
            "/interaction/"
        ):
            if signed_in:
                raise ProviderLoginRefused(f"the provider showed its form again for {username}")
            signed_in = True
            form = {"login": username, "password": password}
            response = send("POST", response.url, data=form)
        else:
            raise ProviderLoginRefused(
                f"unexpected {response.status_code} from {response.url}: {response.text[:200]}"
            )
    raise ProviderLoginRefused(f"more than {MAX_REDIRECTS} redirects")


def token_request(
    provider: OidcProvider, client_id: str, code: str, redirect_uri: str, code_verifier: str
) -> dict[str, Any]:
    """Exchange ``code`` at the token endpoint, authenticating as the client registered."""
    client = provider.client(client_id)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    auth = None
    if client.token_endpoint_auth_method == "client_secret_post":
        form |= {"client_id": client.client_id, "client_secret": client.client_secret}
    else:
        auth = (client.client_id, client.client_secret)
    response = requests.post(
        f"{provider.issuer}/token", data=form, auth=auth, verify=provider.verify, timeout=10
    )
    response.raise_for_status()
    tokens: dict[str, Any] = response.json()
    return tokens


def _code_from(location: str, state: str) -> str:
    params = parse_qs(urlsplit(location).query)
    if "error" in params:
        description = params.get("error_description", [""])[0]
        raise ProviderLoginRefused(f"{params['error'][0]}: {description}")
    if params.get("state") != [state]:
        raise ProviderLoginRefused(f"state mismatch in {location}")
    return params["code"][0]
