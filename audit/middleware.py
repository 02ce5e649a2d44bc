"""Make the current request's client address (and user) known to ``audit_record``.

Services keep their signatures; the audit log reads who asked from where from a context
variable set here for the duration of each request.
"""

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

from gatehouse.addresses import client_address

current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


def current_address() -> str:
    return client_address(current_request.get())


def current_user():  # -> accounts.models.User | None
    """The signed-in user of the current request (API authentication included), if any."""
    request = current_request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None
