"""Console pages of the directory: OpenID Connect sign-in, and the admins' status page with
group mappings and syncs."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from accounts.typing import AuthenticatedHttpRequest
from directory import config, oidc, plan, selectors, services
from directory.forms import GroupMappingForm
from directory.models import SyncRun
from gatehouse.views import admin_required, landing_page

logger = logging.getLogger(__name__)

NEXT_KEY = "directory_oidc_next"
RUNS_SHOWN = 20
BACKEND = "directory.backends.DirectoryBackend"


def _oidc_on() -> None:
    if not config.oidc_enabled():
        raise Http404("OpenID Connect sign-in is not configured.")


@require_safe
def oidc_login(request: HttpRequest) -> HttpResponse:
    """Off to the provider, remembering where to land after."""
    _oidc_on()
    next_url = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        request.session[NEXT_KEY] = landing_page(next_url)
    try:
        return oidc.sign_in_redirect(request, request.build_absolute_uri(reverse("oidc-callback")))
    except oidc.SignInFailed as error:
        messages.error(request, str(error))
        return redirect("login")


@require_safe
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """The provider's answer: a verified ID token signs its person in."""
    _oidc_on()
    try:
        claims = oidc.verified_claims(request)
        user = services.oidc_login_from_claims(claims)
    except (oidc.SignInFailed, services.LoginRefusedByDirectory) as error:
        logger.warning("OpenID Connect sign-in refused: %s", error)
        messages.error(request, str(error))
        return redirect("login")
    next_url = request.session.pop(NEXT_KEY, "") or settings.LOGIN_REDIRECT_URL
    login(request, user, backend=BACKEND)
    return redirect(next_url)


# --- the admins' page ---------------------------------------------------------------------

# How a preview groups the changes it lists, in this order.
CHANGE_GROUPS = (
    ("deactivate", "Deactivate"),
    ("reactivate", "Reactivate"),
    ("profile", "Update name or email"),
    ("join", "Add to teams"),
    ("leave", "Remove from teams"),
)


@dataclass(frozen=True)
class LdapCheck:
    """What a connection and the service account's bind just found."""

    reachable: bool
    error: str


def ldap_check() -> LdapCheck:
    """Ask LDAP now (``selectors.ldap_reachable``); only when LDAP is configured. Shared by
    the page and the API."""
    problem = selectors.ldap_reachable()
    return LdapCheck(reachable=problem is None, error=problem or "")


def sync_refusal(status: selectors.DirectoryStatus) -> str:
    """Why no sync can be asked for now; empty when one can: LDAP can list everyone, or
    OpenID Connect sign-ins' groups can expire (as ``services.directory_sync`` decides)."""
    if status.can_list or status.oidc_issuer:
        return ""
    if not status.ldap_url:
        return "No directory is configured (GATEHOUSE_LDAP_URL, GATEHOUSE_OIDC_ISSUER)."
    return (
        "Reading everyone needs a service account (GATEHOUSE_LDAP_BIND_DN) and a user base "
        "(GATEHOUSE_LDAP_USER_BASE); until both are set, each LDAP user is brought up to date "
        "at their sign-in only."
    )


def run_message(run: SyncRun) -> str:
    """A sync's outcome in one sentence, for the page and ``manage.py directory_sync``."""
    count = len(run.changes)
    if run.outcome == SyncRun.Outcome.APPLIED:
        return (
            f"Sync applied {count} change{pluralize(count)}; the directory listed "
            f"{run.people} {'person' if run.people == 1 else 'people'}."
        )
    if run.outcome == SyncRun.Outcome.DRY_RUN:
        return (
            f"Dry run: a sync would make {count} change{pluralize(count)}; the directory "
            f"listed {run.people} {'person' if run.people == 1 else 'people'}. Nothing was changed."
        )
    if run.outcome == SyncRun.Outcome.UNREACHABLE:
        return f"The directory could not be read: {run.error.rstrip('.')}. Nothing was changed."
    return f"The sync was refused: {run.error.rstrip('.')}. Nothing was changed."


def _run_rows(runs: list[SyncRun]) -> list[dict[str, object]]:
    return [
        {"run": run, "changes": [str(plan.Change(**change)) for change in run.changes]}
        for run in runs
    ]


def _console_page(
    request: HttpRequest, *, mapping_form: GroupMappingForm | None = None
) -> HttpResponse:
    """The page, with the mapping form that failed in place of its blank version."""
    status = selectors.directory_status()
    refusal = sync_refusal(status)
    return render(
        request,
        "directory/console.html",
        {
            "status": status,
            "ldap": ldap_check() if status.ldap_url else None,
            "sync_refusal": refusal,
            "mappings": selectors.group_mappings(),
            "mapping_form": mapping_form or GroupMappingForm(),
            "runs": _run_rows(list(selectors.sync_runs()[:RUNS_SHOWN])),
        },
    )


@require_safe
@admin_required
def console(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _console_page(request)


@require_POST
@admin_required
def mapping_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = GroupMappingForm(request.POST)
    if form.is_valid():
        try:
            mapping = services.group_mapping_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request,
                f"{mapping.get_source_display()} group {mapping.group} mapped to "
                f"{mapping.team.name}: its members now come from the directory.",
            )
            return redirect("directory:console")
    return _console_page(request, mapping_form=form)


@require_POST
@admin_required
def mapping_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    mapping = get_object_or_404(selectors.group_mappings(), pk=pk)
    services.group_mapping_delete(actor=request.user, mapping=mapping)
    messages.success(
        request,
        f"{mapping.get_source_display()} group {mapping.group} no longer maps to "
        f"{mapping.team.name}.",
    )
    return redirect("directory:console")


def _sync(request: AuthenticatedHttpRequest, *, dry_run: bool) -> services.SyncResult | None:
    """A sync the admin asked for, or ``None`` (with the reason as a message) when LDAP is
    not set up for one."""
    try:
        return services.directory_sync(
            trigger=SyncRun.Trigger.MANUAL, actor=request.user, dry_run=dry_run
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return None


@require_POST
@admin_required
def sync_preview(request: AuthenticatedHttpRequest) -> HttpResponse:
    """What a sync would change now, in words; nothing is changed."""
    result = _sync(request, dry_run=True)
    if result is None:
        return redirect("directory:console")
    if result.run.outcome != SyncRun.Outcome.DRY_RUN:
        messages.error(request, run_message(result.run))
        return redirect("directory:console")
    groups = [
        (title, [str(change) for change in result.changes if change.kind == kind])
        for kind, title in CHANGE_GROUPS
    ]
    return render(
        request,
        "directory/preview.html",
        {
            "run": result.run,
            "summary": run_message(result.run),
            "groups": [(title, changes) for title, changes in groups if changes],
        },
    )


@require_POST
@admin_required
def sync_now(request: AuthenticatedHttpRequest) -> HttpResponse:
    result = _sync(request, dry_run=False)
    if result is not None:
        applied = result.run.outcome == SyncRun.Outcome.APPLIED
        (messages.success if applied else messages.error)(request, run_message(result.run))
    return redirect("directory:console")
