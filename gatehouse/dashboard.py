"""The dashboard: the console's start page, which reads from the apps below it."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts import selectors
from accounts.typing import AuthenticatedHttpRequest


@require_safe
@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
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
