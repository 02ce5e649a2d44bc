"""OpenID Connect sign-in with Authlib: the authorization-code flow with PKCE (S256), and an
ID token checked in full: its signature against the provider's published keys, ``iss``,
``aud`` (and ``azp``), ``exp``, ``iat`` and the ``nonce`` this browser's session sent.

A client is made for each sign-in, so the provider's metadata and keys are read afresh
each time: a key the provider rotated away is refused at once, not when a cache expires.
State, nonce and code verifier live in the session and are forgotten at the callback, so a
callback cannot be replayed.
"""

from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from joserfc.errors import JoseError

WELL_KNOWN = "/.well-known/openid-configuration"


class SignInFailed(Exception):
    """The provider's answer is not a sign-in Gatehouse accepts; the message says why and
    holds no token."""


def client() -> DjangoOAuth2App:
    registry = OAuth()
    return registry.register(
        name="gatehouse",
        client_id=settings.GATEHOUSE_OIDC_CLIENT_ID,
        client_secret=settings.GATEHOUSE_OIDC_CLIENT_SECRET,
        server_metadata_url=settings.GATEHOUSE_OIDC_ISSUER.rstrip("/") + WELL_KNOWN,
        client_kwargs={
            "scope": settings.GATEHOUSE_OIDC_SCOPES,
            "code_challenge_method": "S256",
            "verify": settings.GATEHOUSE_OIDC_CA_FILE or True,
            # requests lets REQUESTS_CA_BUNDLE from the environment beat a session's own CA:
            # with a CA file configured, the environment is not consulted.
            "trust_env": not settings.GATEHOUSE_OIDC_CA_FILE,
            "default_timeout": settings.GATEHOUSE_OIDC_TIMEOUT_SECONDS,
        },
    )


def sign_in_redirect(request: HttpRequest, redirect_uri: str) -> HttpResponse:
    """Send the browser to the provider; ``SignInFailed`` when it cannot be reached."""
    app = client()
    try:
        _checked_metadata(app)
        return app.authorize_redirect(request, redirect_uri)
    except (requests.RequestException, ValueError) as error:
        raise SignInFailed(f"The identity provider cannot be reached: {_short(error)}") from error


def provider_check() -> None:
    """Read the provider's metadata as a sign-in does, or raise ``SignInFailed``: what
    ``/readyz`` asks."""
    app = client()
    try:
        _checked_metadata(app)
    except (requests.RequestException, ValueError) as error:
        raise SignInFailed(f"The identity provider cannot be reached: {_short(error)}") from error


def verified_claims(request: HttpRequest) -> dict[str, Any]:
    """The claims of the ID token the provider sends back for this session's sign-in."""
    app = client()
    try:
        _checked_metadata(app)
        token = app.authorize_access_token(request, claims_options=_claims_options())
    except (requests.RequestException, ValueError) as error:
        raise SignInFailed(f"The identity provider cannot be reached: {_short(error)}") from error
    except (OAuthError, JoseError) as error:
        raise SignInFailed(f"The sign-in was refused: {_short(error)}") from error
    claims = token.get("userinfo")
    if not claims:
        raise SignInFailed("The sign-in was refused: the provider sent no ID token.")
    return dict(claims)


def token_claims(app: DjangoOAuth2App, token: dict[str, Any], *, nonce: str) -> dict[str, Any]:
    """Check an ID token (``token["id_token"]``) as a sign-in does; ``SignInFailed`` when
    anything is wrong. The callback runs the same check inside Authlib."""
    try:
        _checked_metadata(app)
        claims = app.parse_id_token(token, nonce=nonce, claims_options=_claims_options())
    except (requests.RequestException, ValueError) as error:
        raise SignInFailed(f"The identity provider cannot be reached: {_short(error)}") from error
    except (OAuthError, JoseError) as error:
        raise SignInFailed(f"The sign-in was refused: {_short(error)}") from error
    if not claims:
        raise SignInFailed("The sign-in was refused: the provider sent no ID token.")
    return dict(claims)


def _claims_options() -> dict[str, Any]:
    """Authlib checks ``aud`` only when told to: the token must name this client."""
    return {
        "iss": {"essential": True, "values": [settings.GATEHOUSE_OIDC_ISSUER]},
        "aud": {"essential": True, "values": [settings.GATEHOUSE_OIDC_CLIENT_ID]},
    }


def _checked_metadata(app: DjangoOAuth2App) -> dict[str, Any]:
    """The provider's metadata, refused unless it names the configured issuer exactly, as
    its tokens' ``iss`` must (a provider answering for another would otherwise set the
    ``iss`` its tokens are checked against)."""
    metadata: dict[str, Any] = app.load_server_metadata()
    if metadata.get("issuer") != settings.GATEHOUSE_OIDC_ISSUER:
        raise SignInFailed("The sign-in was refused: the provider's metadata names another issuer.")
    return metadata


def _short(error: Exception) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:200]
