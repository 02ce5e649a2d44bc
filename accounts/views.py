"""The identity console: users, teams and one's own profile.

Each view parses a form, calls one service or selector, then redirects or renders. An
action posted from a detail page that fails renders that page again with the errors in place.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts import selectors, services
from accounts.forms import (
    PasswordChangeForm,
    PasswordSetForm,
    TeamCreateForm,
    TeamMemberAddForm,
    TeamUpdateForm,
    UserCreateForm,
    UserSearchForm,
    UserUpdateForm,
)
from accounts.models import Team, User
from accounts.signals import team_membership_owners
from accounts.typing import AuthenticatedHttpRequest
from gatehouse.addresses import client_address
from gatehouse.forms import ActionForm
from gatehouse.views import admin_required, landing_page

USERS_PER_PAGE = 25


class LoginView(auth_views.LoginView):
    """Django's login, landing on a page that answers GET: a ``next`` naming a POST-only
    action (a form posted after the session expired) lands on the nearest page above it
    (``gatehouse.views.landing_page``), not on a 405."""

    def get_redirect_url(self) -> str:
        url = super().get_redirect_url()  # "" unless it is safe: our host, our scheme
        return landing_page(url) if url else url

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The single sign-on button, when an OpenID provider is configured."""
        context = super().get_context_data(**kwargs)
        context["oidc_name"] = (
            settings.GATEHOUSE_OIDC_NAME if settings.GATEHOUSE_OIDC_ISSUER else ""
        )
        return context


def _visible_user(request: AuthenticatedHttpRequest, username: str) -> User:
    return get_object_or_404(selectors.user_list(viewer=request.user), username=username)


def _visible_team(request: AuthenticatedHttpRequest, name: str) -> Team:
    """A team the viewer may see; any other team is a 404, as if it did not exist."""
    return get_object_or_404(selectors.team_list(viewer=request.user), name=name)


def _teams_of(request: AuthenticatedHttpRequest, user: User) -> list[Team]:
    return list(selectors.team_list(viewer=request.user, member=user))


@require_safe
@admin_required
def user_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    search = UserSearchForm(request.GET)
    users = selectors.user_list(viewer=request.user, search=search.term)
    page = Paginator(users, USERS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    locked = selectors.accounts_locked_until(account.username for account in page.object_list)
    for account in page.object_list:
        # For the Locked badge: the template reads it; it is not a field of the model.
        account.locked_until = locked.get(account.username)  # type: ignore[attr-defined]
    return render(request, "accounts/users/list.html", {"search": search, "page": page})


@admin_required
def user_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                actor=request.user,
                username=data["username"],
                password=data["password"],
                full_name=data["full_name"],
                email=data["email"],
                is_admin=data["is_admin"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("users:detail", username=user.username)
    return render(request, "accounts/users/create.html", {"form": form})


def _user_page(
    request: AuthenticatedHttpRequest,
    account: User,
    *,
    update_form: UserUpdateForm | None = None,
    password_form: PasswordSetForm | None = None,
    status_form: ActionForm | None = None,
) -> HttpResponse:
    """The user detail page, with any form that failed in place of its blank version."""
    if update_form is None:
        update_form = UserUpdateForm(
            initial={
                "full_name": account.full_name,
                "email": account.email,
                "is_admin": account.is_admin,
            }
        )
    # For the Locked badge, as on the list: not a field of the model.
    locked_until = selectors.accounts_locked_until([account.username]).get(account.username)
    account.locked_until = locked_until  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/users/detail.html",
        {
            "account": account,
            "teams": _teams_of(request, account),
            "update_form": update_form,
            "password_form": password_form or PasswordSetForm(),
            "status_form": status_form or ActionForm(),
        },
    )


@require_safe
@admin_required
def user_detail(request: AuthenticatedHttpRequest, username: str) -> HttpResponse:
    return _user_page(request, _visible_user(request, username))


@require_POST
@admin_required
def user_update(request: AuthenticatedHttpRequest, username: str) -> HttpResponse:
    account = _visible_user(request, username)
    form = UserUpdateForm(request.POST)
    if form.is_valid():
        try:
            services.user_update(actor=request.user, user=account, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
            account.refresh_from_db()
        else:
            messages.success(request, f"Details of {account.username} saved.")
            return redirect("users:detail", username=account.username)
    return _user_page(request, account, update_form=form)


@require_POST
@admin_required
def user_password(request: AuthenticatedHttpRequest, username: str) -> HttpResponse:
    account = _visible_user(request, username)
    form = PasswordSetForm(request.POST)
    if form.is_valid():
        try:
            services.user_password_change(
                actor=request.user, user=account, new_password=form.cleaned_data["new_password"]
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Password of {account.username} changed.")
            return redirect("users:detail", username=account.username)
    return _user_page(request, account, password_form=form)


@require_POST
@admin_required
def user_deactivate(request: AuthenticatedHttpRequest, username: str) -> HttpResponse:
    account = _visible_user(request, username)
    form = ActionForm(request.POST)
    try:
        services.user_deactivate(actor=request.user, user=account)
    except ValidationError as error:
        form.add_service_error(error)
        return _user_page(request, account, status_form=form)
    messages.success(request, f"User {account.username} deactivated.")
    return redirect("users:detail", username=account.username)


@require_POST
@admin_required
def user_unlock(request: AuthenticatedHttpRequest, username: str) -> HttpResponse:
    account = _visible_user(request, username)
    if services.user_unlock(actor=request.user, user=account):
        messages.success(request, f"User {account.username} unlocked.")
    else:
        messages.info(request, f"User {account.username} was not locked.")
    return redirect("users:detail", username=account.username)


@require_POST
@admin_required
def user_reactivate(request: AuthenticatedHttpRequest, username: str) -> HttpResponse:
    account = services.user_reactivate(actor=request.user, user=_visible_user(request, username))
    messages.success(request, f"User {account.username} reactivated.")
    return redirect("users:detail", username=account.username)


@require_safe
@login_required
def team_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request, "accounts/teams/list.html", {"teams": selectors.team_list(viewer=request.user)}
    )


@admin_required
def team_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Team {team.name} created.")
            return redirect("teams:detail", name=team.name)
    return render(request, "accounts/teams/create.html", {"form": form})


def _team_page(
    request: AuthenticatedHttpRequest,
    team: Team,
    *,
    update_form: TeamUpdateForm | None = None,
    member_form: TeamMemberAddForm | None = None,
) -> HttpResponse:
    """The team detail page, with any form that failed in place of its blank version. A team
    whose members come from elsewhere (the directory) says so, and offers no edits of them."""
    context = {
        "team": team,
        "members": selectors.team_members(team=team),
        "owners": team_membership_owners(team),
    }
    if request.user.is_admin:
        context["update_form"] = update_form or TeamUpdateForm(
            initial={"description": team.description}
        )
        context["member_form"] = member_form or TeamMemberAddForm(
            candidates=selectors.team_member_candidates(team=team)
        )
    return render(request, "accounts/teams/detail.html", context)


@require_safe
@login_required
def team_detail(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    return _team_page(request, _visible_team(request, name))


@require_POST
@admin_required
def team_update(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    team = _visible_team(request, name)
    form = TeamUpdateForm(request.POST)
    if form.is_valid():
        try:
            services.team_update(actor=request.user, team=team, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
            team.refresh_from_db()
        else:
            messages.success(request, f"Team {team.name} updated.")
            return redirect("teams:detail", name=team.name)
    return _team_page(request, team, update_form=form)


@admin_required
def team_delete(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    """GET asks for confirmation, POST deletes: the page works with JavaScript off."""
    team = _visible_team(request, name)
    if request.method == "POST":
        try:
            services.team_delete(actor=request.user, team=team)
        except services.TeamInUse as error:
            messages.error(request, error.detail)
            return redirect("teams:detail", name=team.name)
        messages.success(request, f"Team {name} deleted.")
        return redirect("teams:list")
    return render(request, "accounts/teams/confirm_delete.html", {"team": team})


@require_POST
@admin_required
def team_member_add(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    team = _visible_team(request, name)
    form = TeamMemberAddForm(request.POST, candidates=selectors.team_member_candidates(team=team))
    if form.is_valid():
        user = form.cleaned_data["username"]
        try:
            services.team_member_add(actor=request.user, team=team, user=user)
        except services.MembershipOwned as error:
            messages.error(request, error.detail)
            return redirect("teams:detail", name=team.name)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"{user.username} added to {team.name}.")
            return redirect("teams:detail", name=team.name)
    return _team_page(request, team, member_form=form)


@require_POST
@admin_required
def team_member_remove(request: AuthenticatedHttpRequest, name: str, username: str) -> HttpResponse:
    team = _visible_team(request, name)
    user = _visible_user(request, username)
    try:
        removed = services.team_member_remove(actor=request.user, team=team, user=user)
    except services.MembershipOwned as error:
        messages.error(request, error.detail)
        return redirect("teams:detail", name=team.name)
    if removed:
        messages.success(request, f"{user.username} removed from {team.name}.")
    else:
        messages.info(request, f"{user.username} was not a member of {team.name}.")
    return redirect("teams:detail", name=team.name)


@login_required
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Your own details, teams and keys, and the form to change your password."""
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_password_change(
                actor=request.user,
                user=request.user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
                address=client_address(request),
            )
        except ValidationError as error:
            form.add_service_error(error)
        except services.LoginRefused as error:
            form.add_error(None, str(error))
        else:
            update_session_auth_hash(request, user)
            messages.success(request, "Your password has been changed.")
            return redirect("profile")
    return _profile_page(request, form=form)


def _profile_page(
    request: AuthenticatedHttpRequest,
    *,
    form: PasswordChangeForm | None = None,
    new_token: str = "",
    token_error: str = "",
) -> HttpResponse:
    return render(
        request,
        "accounts/profile.html",
        {
            "teams": _teams_of(request, request.user),
            # Only where Gatehouse holds the password: a directory user's is the directory's.
            "form": (form or PasswordChangeForm()) if request.user.has_usable_password() else None,
            "new_token": new_token,
            "token_error": token_error,
            "token_hours": int(settings.GATEHOUSE_TOKEN_TTL.total_seconds() // 3600),
        },
    )


@require_POST
@login_required
def profile_token_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An API token for oneself, shown once on the page it answers with (never stored, nor
    put in a message or a redirect). What a user who signs in through the directory, and so
    has no password here, gives Notary and the API."""
    try:
        raw_token, _ = services.api_token_create(user=request.user)
    except services.TooManyTokens as error:
        return _profile_page(request, token_error=f"{error} Try again later.")
    return _profile_page(request, new_token=raw_token)
