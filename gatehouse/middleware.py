"""The request id: taken from a sane ``X-Request-ID`` header or made, logged and echoed."""

import re
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

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
