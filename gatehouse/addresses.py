"""The client address a request came from, for lockouts, throttles and the audit log."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(request: HttpRequest | None) -> str:
    """``REMOTE_ADDR``, unless it is one of ``GATEHOUSE_TRUSTED_PROXIES``: then
    ``X-Forwarded-For`` is read from its end, each trusted proxy's entry skipped, and the
    first other address is the client's. What comes before it the client wrote, and may
    forge; a header from anyone but a trusted proxy is ignored for the same reason.

    Normalised, so one client cannot pass for many: an IPv4-mapped IPv6 address is its IPv4
    address, and an address with an IPv6 zone is no address ("").
    """
    if request is None:
        return ""
    address = _parsed(request.META.get("REMOTE_ADDR", ""))
    if address is None:
        return ""
    if _trusted(address):
        for entry in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            hop = _parsed(entry)
            if hop is None:
                break
            address = hop
            if not _trusted(hop):
                break
    return str(address)


def address_group(address: str) -> str:
    """What lockouts and throttles count by: an IPv4 address, or the /64 an IPv6 address is
    in (a host is usually given a whole /64, and could take a new address per attempt)."""
    parsed = _parsed(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else ""


def _parsed(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443``,
    ``2001:db8::1``), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def _trusted(address: IPAddress) -> bool:
    return any(address in network for network in settings.GATEHOUSE_TRUSTED_PROXIES)
