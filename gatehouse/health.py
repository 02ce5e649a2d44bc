"""Probes for load balancers and orchestrators: no login, no CSRF, JSON, never a 500.

``/healthz``: the process answers (touches nothing). ``/readyz``: the database, the broker and
Notary answer, each reported with its time and, when it fails, its error (credentials removed);
any of them failing is a 503 (``"status": "unavailable"``). When configured, LDAP (a connection
and the service account's bind) and the OpenID provider (its discovery document) are checked
too, but their failure is a 200 with ``"status": "degraded"``: the console, and the local
admin who can always sign in to it, must stay in the load balancer through a directory outage.
"""

import http.client
import re
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from kombu.exceptions import KombuError

from directory.selectors import ldap_reachable, oidc_reachable
from gatehouse.celery import app as celery_app

BROKER_TIMEOUT = 2.0
NOTARY_TIMEOUT = 2.0
NOTARY_HEALTH_PATH = "/_notary_server/health"
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


class CheckFailed(Exception):
    """A check's own finding, e.g. Notary answered 503 or is not configured."""


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        folders = [options.get(name) or "" for name in ("data_folder_in", "data_folder_out")]
        if not all(folders) or not all(Path(folder).is_dir() for folder in folders):
            raise CheckFailed("the filesystem broker's queue folder does not exist")
        return
    broker = celery_app.connection_for_read(
        url,
        connect_timeout=BROKER_TIMEOUT,
        transport_options={
            "socket_timeout": BROKER_TIMEOUT,
            "socket_connect_timeout": BROKER_TIMEOUT,
        },
    )
    try:
        errors = (*broker.connection_errors, *broker.channel_errors)
        try:
            broker.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
        except errors as error:
            raise CheckFailed(str(error) or type(error).__name__) from error
    finally:
        broker.release()


def _notary() -> None:
    if not settings.NOTARY_URL:
        raise CheckFailed("not configured: NOTARY_URL is not set")
    url = urlsplit(settings.NOTARY_URL)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise CheckFailed("NOTARY_URL is not an http:// or https:// URL")
    notary: http.client.HTTPConnection
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=settings.NOTARY_CA_BUNDLE or None)
        notary = http.client.HTTPSConnection(
            url.hostname, url.port, timeout=NOTARY_TIMEOUT, context=context
        )
    else:
        notary = http.client.HTTPConnection(url.hostname, url.port, timeout=NOTARY_TIMEOUT)
    try:
        notary.request("GET", url.path.rstrip("/") + NOTARY_HEALTH_PATH)
        answer = notary.getresponse()
        body = answer.read(1024).decode("utf-8", "replace").strip()
    finally:
        notary.close()
    if answer.status != 200:
        raise CheckFailed(f"notary-server answered {answer.status}: {body[:200]}")


def _ldap() -> None:
    problem = ldap_reachable()
    if problem is not None:
        raise CheckFailed(problem)


def _oidc() -> None:
    problem = oidc_reachable()
    if problem is not None:
        raise CheckFailed(problem)


Check = tuple[Callable[[], None], tuple[type[BaseException], ...]]

CHECKS: dict[str, Check] = {
    "database": (_database, (DatabaseError,)),
    # KeyError, ValueError, ImportError: a broker URL that names no transport or is malformed.
    "broker": (_broker, (CheckFailed, KombuError, OSError, KeyError, ValueError, ImportError)),
    # ValueError: a bad port in NOTARY_URL; OSError covers refused, timeouts and TLS errors.
    "notary": (_notary, (CheckFailed, OSError, http.client.HTTPException, ValueError)),
}


def optional_checks() -> dict[str, Check]:
    """The directory's checks, for what is configured: reported, never a 503."""
    checks: dict[str, Check] = {}
    if settings.GATEHOUSE_LDAP_URL:
        checks["ldap"] = (_ldap, (CheckFailed,))
    if settings.GATEHOUSE_OIDC_ISSUER:
        checks["oidc"] = (_oidc, (CheckFailed,))
    return checks


def _redact(message: str) -> str:
    """No credentials in an answer anyone may read: URL user info and known passwords go."""
    message = _USERINFO.sub("***@", message)
    secrets = [
        settings.DATABASES["default"].get("PASSWORD"),
        settings.NOTARY_PASSWORD,
        settings.GATEHOUSE_LDAP_BIND_PASSWORD,
        settings.GATEHOUSE_OIDC_CLIENT_SECRET,
        urlsplit(settings.CELERY_BROKER_URL).password,
    ]
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def _run(check: Callable[[], None], errors: tuple[type[BaseException], ...]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except errors as error:
        result: dict = {"ok": False, "error": _redact(str(error) or type(error).__name__)}
    else:
        result = {"ok": True}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@csrf_exempt
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@csrf_exempt
@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {name: _run(check, errors) for name, (check, errors) in CHECKS.items()}
    ready = all(result["ok"] for result in checks.values())
    optional = {name: _run(check, errors) for name, (check, errors) in optional_checks().items()}
    whole = all(result["ok"] for result in optional.values())
    return JsonResponse(
        {
            "status": "unavailable" if not ready else "ok" if whole else "degraded",
            "checks": {**checks, **optional},
        },
        status=200 if ready else 503,
    )
