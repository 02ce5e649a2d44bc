"""The request id: taken from a sane ``X-Request-ID`` header or made, logged and echoed; a
NUL character anywhere in the request line or headers refused; and a database that cannot be
reached answered 503, not 500."""

import base64
import binascii
import re
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from gatehouse.api import (
    DATABASE_UNAVAILABLE,
    DATABASE_UNAVAILABLE_DETAIL,
    RETRY_AFTER_SECONDS,
    log_database_unavailable,
)
from gatehouse.logging import request_id

HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(HEADER, "")
        value = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        # An attribute of our own on the request, as middleware sets them (request.user is
        # one); the stubs declare only Django's.
        request.request_id = value  # type: ignore[attr-defined]
        # Not reset on the way out: Django logs 4xx/5xx answers after the middleware returns.
        # request_finished clears it once the response is closed.
        request_id.set(value)
        response = self.get_response(request)
        response[HEADER] = value
        return response


def _forget_request_id(**kwargs: object) -> None:
    request_id.set(None)


request_finished.connect(_forget_request_id, dispatch_uid="gatehouse.middleware.request_id")


class NulCharacterMiddleware:
    """PostgreSQL stores no NUL (``\\x00``) in text, so a NUL that reached a query would be a
    ``DataError`` and a 500. Refused at the edge instead, before any view or lookup sees it:
    in the path a 404 (no user, team or key has such a name), in the query string, a header
    or the Basic credentials (``/auth/token``) a 400. Bodies are the forms' and serializers'
    to check: their text fields refuse NUL with a message on the field.

    API and token-service answers are JSON. The console's 400 page is rendered without the
    request: a NUL in the ``Cookie`` header must not reach the session's lookup.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = _nul_in_request(request)
        if where is not None:
            message = f"Null characters are not allowed in the {where}."
            if request.path.startswith(("/api/", "/auth/")):
                return JsonResponse({"detail": message}, status=400)
            page = loader.render_to_string("400.html", {"message": message})
            return HttpResponse(page, status=400)
        if "\x00" in request.path_info:
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "Not found."}, status=404)
            raise Http404("No such page.")
        return self.get_response(request)


def _nul_in_request(request: HttpRequest) -> str | None:
    """Where the request holds a NUL outside its body, or ``None``."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:  # %00 is the only escape that decodes to NUL
        return "query string"
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            return f"{key[5:].replace('_', '-').title()} header"
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except binascii.Error:
            return None  # not credentials at all: refused where they are read
        if b"\x00" in decoded:
            return "credentials"
    return None


class DatabaseUnavailableMiddleware:
    """Views outside DRF (the console): ``OperationalError``/``InterfaceError`` become a 503
    page with ``Retry-After``. Every other exception goes on to Django's 500 handling.

    The page is rendered without the request: its context processors would query the
    database that just failed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        log_database_unavailable(exception, request.path)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": DATABASE_UNAVAILABLE_DETAIL}, status=503)
        else:
            response = HttpResponse(loader.render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
