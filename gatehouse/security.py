"""Headers every answer needs.

The content security policy: every script and style comes from our own static files. The
console has no inline script, style or event handler, and the API docs load Swagger UI's
init script as a file (``SpectacularSwaggerSplitView``), so the policy can forbid them all.

``Cache-Control: no-store`` on whatever answers a signed-in user (console session or API
bearer token), so no browser or proxy keeps it: after logging out, Back shows nothing.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


NO_STORE = "no-store"


def answered_someone(request: HttpRequest) -> bool:
    """Whether the request was answered as a signed-in user: its session's user, if a view,
    a template or a decorator asked who it is, or the user of its bearer token (DRF puts
    that user on the request). Never reads the database: a user nothing asked for was not
    looked up, and nothing of the answer depends on them."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        # AuthenticationMiddleware's lazy user keeps what it looked up here.
        user = getattr(request, "_cached_user", None)
    return bool(user is not None and user.is_authenticated)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer to a signed-in user, unless the answer
    says ``no-store`` already (``never_cache``, bundle downloads). Anonymous answers keep
    their own headers (the login page, ``/healthz``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if NO_STORE not in response.get("Cache-Control", "").lower() and answered_someone(request):
            response["Cache-Control"] = NO_STORE
        return response
