"""The request id: taken from a sane ``X-Request-ID`` header or made, logged and echoed; and
a database that cannot be reached answered 503, not 500."""

import re
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse, JsonResponse
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
        request.request_id = value
        # Not reset on the way out: Django logs 4xx/5xx answers after the middleware returns.
        # request_finished clears it once the response is closed.
        request_id.set(value)
        response = self.get_response(request)
        response[HEADER] = value
        return response


def _forget_request_id(**kwargs: object) -> None:
    request_id.set(None)


request_finished.connect(_forget_request_id, dispatch_uid="gatehouse.middleware.request_id")


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
