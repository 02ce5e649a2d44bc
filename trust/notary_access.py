"""The one Notary client of this process, built from the settings."""

from functools import cache

from django.conf import settings

from trust.notary.client import NotaryClient
from trust.notary.transport import HttpTransport


@cache
def _client(url: str, ca_bundle: str, username: str, password: str) -> NotaryClient:
    transport = HttpTransport(
        url,
        ca_bundle=ca_bundle or None,
        username=username or None,
        password=password or None,
        timeout=settings.NOTARY_TIMEOUT,
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
    )
