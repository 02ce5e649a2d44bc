"""Console pages that belong to no single app, and the access rule every console page uses."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts import selectors


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admins only: a visitor is sent to log in, a signed-in non-admin gets the 403 page."""

    @wraps(view)
    @login_required
    def admin_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_admin:
            raise PermissionDenied("Only admins may open this page.")
        return view(request, *args, **kwargs)

    return admin_view


@require_safe
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    teams = selectors.team_list(viewer=request.user)
    my_teams = selectors.team_list(viewer=request.user, member=request.user)
    return render(
        request,
        "dashboard.html",
        {
            "user_count": selectors.user_list(viewer=request.user).count(),
            "team_count": teams.count(),
            "my_teams": my_teams,
        },
    )
