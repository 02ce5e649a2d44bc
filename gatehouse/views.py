"""The access rule every console page uses."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admins only: a visitor is sent to log in, a signed-in non-admin gets the 403 page."""

    @wraps(view)
    @login_required
    def admin_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_admin:
            raise PermissionDenied("Only admins may open this page.")
        return view(request, *args, **kwargs)

    return admin_view
