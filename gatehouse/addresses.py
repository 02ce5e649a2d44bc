"""The client address a request came from, for lockouts, throttles and the audit log."""

import contextlib
import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest | None) -> str:
    """``REMOTE_ADDR``, or behind a proxy (``GATEHOUSE_BEHIND_PROXY``) the address the proxy
    appended last to ``X-Forwarded-For``: what comes before it the client wrote, and may
    forge. Without this, every client would share the proxy's address, and one client's
    failed logins would lock out everyone."""
    if request is None:
        return ""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.GATEHOUSE_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        with contextlib.suppress(ValueError):
            address = str(ipaddress.ip_address(forwarded))
    return address[:45]
