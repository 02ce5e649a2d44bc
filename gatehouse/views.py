"""The access rule every console page uses, and where a login sends its user."""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admins only: a visitor is sent to log in, a signed-in non-admin gets the 403 page."""

    @wraps(view)
    @login_required
    def admin_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        # login_required let only a signed-in user in; the first test says so to mypy (this
        # module may not import accounts' User, so it cannot use AuthenticatedHttpRequest).
        if not request.user.is_authenticated or not request.user.is_admin:
            raise PermissionDenied("Only admins may open this page.")
        return view(request, *args, **kwargs)

    return admin_view


def accepts_get(view: Callable[..., HttpResponse]) -> bool:
    """Whether a resolved view answers GET: a class-based view with a ``get``, or a function
    none of whose decorators (``require_POST``, ``require_http_methods``) leaves GET out.

    Django's method decorators keep their list in the closure of the function they return,
    and every decorator here keeps the function it wraps in ``__wrapped__``.
    """
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return "get" in view_class.http_method_names and hasattr(view_class, "get")
    layer: object = view
    while layer is not None:
        code = getattr(layer, "__code__", None)
        closure = getattr(layer, "__closure__", None) or ()
        if code is not None:
            cells = dict(zip(code.co_freevars, closure, strict=False))
            methods = cells.get("request_method_list")
            if methods is not None and "GET" not in methods.cell_contents:
                return False
        layer = getattr(layer, "__wrapped__", None)
    return True


def landing_page(url: str) -> str:
    """Where to go after logging in when ``url`` (a safe ``next``) was asked for.

    A session that expired on a form's POST sends the user to log in with ``next`` naming
    the form's action, which answers POST only: a GET of it would be a bare 405. Then the
    nearest page above it that answers GET is where they land (``/keys/<id>/revoke/`` →
    the dashboard, ``/teams/ci/members/bob/remove/`` → ``/teams/ci/``), with no query.
    Any other URL (a page, or one that matches nothing) is kept as it is.
    """
    path = urlsplit(url).path
    try:
        match = resolve(path)
    except Resolver404:
        return url
    if accepts_get(match.func):
        return url
    while path not in ("", "/"):
        path = path.rstrip("/").rpartition("/")[0] + "/"
        try:
            match = resolve(path)
        except Resolver404:
            continue
        if accepts_get(match.func):
            return path
    return "/"
