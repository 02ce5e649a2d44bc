"""The one Notary client of this process, built from the settings."""

from functools import cache

from django.conf import settings

from trust.metrics import notary_request_observed
from trust.notary.auth import Challenge, TokenMinter
from trust.notary.client import NotaryClient
from trust.notary.errors import NotaryRejected
from trust.notary.http_transport import HttpTransport
from trust.token_service.tokens import TokenRequestInvalid, service_token, token_realm


def gatehouse_minter(realm: str) -> TokenMinter:
    """Tokens for Gatehouse's own jobs, minted in-process when notary-server names
    Gatehouse's own token realm; any other realm is asked over HTTP (``None``)."""

    def mint(challenge: Challenge, scope: str) -> str | None:
        if challenge.realm != realm:
            return None
        try:
            return service_token(service=challenge.service, scope=scope)
        except TokenRequestInvalid as error:  # e.g. the server names another service
            raise NotaryRejected(f"cannot mint a token: {error}", code="UNAUTHORIZED") from error

    return mint


@cache
def _client(url: str, ca_bundle: str, username: str, password: str, realm: str) -> NotaryClient:
    transport = HttpTransport(
        url,
        ca_bundle=ca_bundle or None,
        username=username or None,
        password=password or None,
        timeout=settings.NOTARY_TIMEOUT,
        token_minter=gatehouse_minter(realm),
        observer=notary_request_observed,
    )
    return NotaryClient(transport)


def notary_client() -> NotaryClient:
    """Shared, so its connections are reused; rebuilt if the settings change (tests)."""
    if not settings.NOTARY_URL:
        raise RuntimeError("NOTARY_URL is not set: Gatehouse has no Notary server to talk to.")
    return _client(
        settings.NOTARY_URL,
        settings.NOTARY_CA_BUNDLE,
        settings.NOTARY_USERNAME,
        settings.NOTARY_PASSWORD,
        token_realm(),
    )
