"""The content-trust console: repositories, the jobs that keep Notary in step, the trust root.

Each view parses a form, calls one service or selector, then redirects or renders. Anyone
signed in sees the repositories their teams sign; every write, the jobs list and the trust
root are for admins. An action posted from a page that fails renders that page again with
the errors in place; nothing has changed.
"""

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from accounts import selectors as accounts_selectors
from accounts.models import Team
from accounts.typing import AuthenticatedHttpRequest
from gatehouse.forms import ActionForm
from gatehouse.views import admin_required
from trust import custody, pins, selectors
from trust.forms import (
    JobFilter,
    RepositoryBulkForm,
    RepositoryCreateForm,
    RepositoryFilter,
    RepositoryProgressForm,
    RootKeyExportForm,
    RootKeyPinForm,
    SignerTeamsUpdateForm,
    id_ranges,
)
from trust.models import Repository
from trust.services import repositories, root_key, sync_requests

REPOSITORIES_PER_PAGE = 25
JOBS_PER_PAGE = 25
LATEST_JOBS = 10


def _visible_repository(request: AuthenticatedHttpRequest, pk: int) -> Repository:
    """A repository the viewer may see; any other is a 404, as if it did not exist."""
    return get_object_or_404(selectors.repository_list(viewer=request.user), pk=pk)


def _all_teams(request: AuthenticatedHttpRequest) -> QuerySet[Team]:
    """The teams the viewer may see, for the signer-team choices and the team filter."""
    return accounts_selectors.team_list(viewer=request.user).order_by("name")


def _filtered(request: HttpRequest, filters: RepositoryFilter | JobFilter) -> bool:
    return any(request.GET.get(name) for name in filters.filters)


# --- Repositories -------------------------------------------------------------------------


def _repository_list_page(
    request: AuthenticatedHttpRequest,
    *,
    create_form: RepositoryCreateForm | None = None,
    bulk_form: RepositoryBulkForm | None = None,
) -> HttpResponse:
    """The list, with any creation form that failed in place of its blank version."""
    teams = _all_teams(request)
    filters = RepositoryFilter(
        request.GET, queryset=selectors.repository_list(viewer=request.user), teams=teams
    )
    page = Paginator(filters.qs, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"filters": filters, "page": page, "filtered": _filtered(request, filters)}
    progress = RepositoryProgressForm(request.GET)
    if progress.is_valid() and progress.cleaned_data["batch"]:
        batch = selectors.repository_batch_progress(
            viewer=request.user, ids=progress.cleaned_data["batch"]
        )
        context["batch"] = batch
        context["batch_counter"] = batch_counter(batch)
        context["batch_ranges"] = id_ranges(progress.cleaned_data["batch"])
    if request.user.is_admin:
        context["create_form"] = create_form or RepositoryCreateForm(teams=teams)
        context["bulk_form"] = bulk_form or RepositoryBulkForm(teams=teams)
    return render(request, "trust/repositories/list.html", context)


@require_safe
@login_required
def repository_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _repository_list_page(request)


@require_POST
@admin_required
def repository_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RepositoryCreateForm(request.POST, teams=_all_teams(request))
    if form.is_valid():
        try:
            repository, _ = repositories.repository_create(
                actor=request.user,
                gun=form.cleaned_data["gun"],
                signer_team_names=form.team_names,
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request, f"Repository {repository.gun} created; its initialisation is queued."
            )
            return redirect("repositories:detail", pk=repository.pk)
    return _repository_list_page(request, create_form=form)


@require_POST
@admin_required
def repository_bulk(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RepositoryBulkForm(request.POST, teams=_all_teams(request))
    if form.is_valid():
        try:
            result = repositories.repositories_create_bulk(
                actor=request.user,
                guns=form.cleaned_data["guns"],
                signer_team_names=form.team_names,
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            created = len(result.created)
            summary = f"{created} repositor{'y' if created == 1 else 'ies'} created"
            if result.skipped:
                summary += f"; skipped, managed already: {', '.join(result.skipped)}"
            messages.success(request, f"{summary}.")
            if not result.created:
                return redirect("repositories")
            batch = id_ranges(repository.pk for repository, _ in result.created)
            return redirect(f"{reverse('repositories')}?batch={batch}")
    return _repository_list_page(request, bulk_form=form)


def _batch_json(progress: selectors.BatchProgress) -> dict:
    return {
        "total": progress.total,
        "ready": progress.ready,
        "failed": progress.failed,
        "pending": progress.pending,
        "done": progress.done,
        "text": batch_counter(progress),
        "failures": [
            {
                "gun": repository.gun,
                "url": reverse("repositories:detail", args=[repository.pk]),
                "error": job.error if job else "",
                "job_id": job.pk if job else None,
                "job_url": reverse("jobs:detail", args=[job.pk]) if job else None,
            }
            for repository, job in progress.failures
        ],
    }


def batch_counter(progress: selectors.BatchProgress) -> str:
    """The counter's words, the same on the page and in its updates."""
    return f"{progress.ready} of {progress.total} ready, {progress.failed} failed"


@require_safe
@login_required
def repository_progress(request: AuthenticatedHttpRequest) -> JsonResponse:
    """The states console.js shows without a reload: the progress of a bulk creation
    (``?batch=``) and the state of the repositories of ``?ids=``, those the viewer may see."""
    form = RepositoryProgressForm(request.GET)
    if not form.is_valid():
        errors = {field: list(messages) for field, messages in form.errors.items()}
        return JsonResponse({"errors": errors}, status=400)
    batch, ids = form.cleaned_data["batch"], form.cleaned_data["ids"]
    states = selectors.repository_list(viewer=request.user).filter(pk__in=ids)
    progress = (
        selectors.repository_batch_progress(viewer=request.user, ids=batch) if batch else None
    )
    return JsonResponse(
        {
            "batch": _batch_json(progress) if progress else None,
            "repositories": {
                str(repository.pk): {
                    "state": repository.state,
                    "label": repository.get_state_display(),
                }
                for repository in states.only("pk", "state")
            },
        }
    )


def _repository_page(
    request: AuthenticatedHttpRequest,
    repository: Repository,
    *,
    teams_form: SignerTeamsUpdateForm | None = None,
) -> HttpResponse:
    """The detail page, with the signer-teams form that failed in place of its blank one.

    The jobs are read before the repository is read again: a job commits its repository's
    row with its own, so a job read as finished means the repository read after it shows
    what the job did. Read the other way round, a job finishing in between would show
    "Succeeded" beside "Pending", and the page, with no job left to follow, would never
    reload.
    """
    jobs = list(selectors.job_list(viewer=request.user).filter(repository=repository)[:LATEST_JOBS])
    repository.refresh_from_db()
    signer_teams = list(repository.signer_teams.order_by("name"))
    details = selectors.repository_details([repository])
    context = {
        "repository": repository,
        "signer_teams": signer_teams,
        # Each role with the people whose keys it holds, so the card names them.
        "delegations": [
            {**role, "people": sorted({k["username"] for k in role["keys"] if k["username"]})}
            for role in details.delegations[repository.pk]
        ],
        "root_key_id": details.root_key_id(repository),
        "jobs": jobs,
    }
    if request.user.is_admin:
        context["teams_form"] = teams_form or SignerTeamsUpdateForm(
            teams=_all_teams(request),
            initial={"signer_teams": [team.name for team in signer_teams]},
        )
        context["action_form"] = ActionForm()
    return render(request, "trust/repositories/detail.html", context)


@require_safe
@login_required
def repository_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _repository_page(request, _visible_repository(request, pk))


@require_POST
@admin_required
def repository_signers(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    repository = _visible_repository(request, pk)
    form = SignerTeamsUpdateForm(request.POST, teams=_all_teams(request))
    if form.is_valid():
        try:
            repositories.repository_update_signer_teams(
                actor=request.user,
                repository=repository,
                signer_team_names=form.cleaned_data["signer_teams"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request, f"Signer teams of {repository.gun} saved; a sync to Notary is queued."
            )
            return redirect("repositories:detail", pk=repository.pk)
    return _repository_page(request, repository, teams_form=form)


@require_POST
@admin_required
def repository_sync(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    repository = _visible_repository(request, pk)
    sync_requests.repository_sync_request(
        repository=repository, actor=request.user, cause="sync asked for", delay=0
    )
    messages.success(request, f"Sync of {repository.gun} queued.")
    return redirect("repositories:detail", pk=repository.pk)


@admin_required
def repository_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation, POST queues the deletion: the page works with JavaScript off."""
    repository = _visible_repository(request, pk)
    if request.method == "POST":
        repositories.repository_delete(actor=request.user, repository=repository)
        messages.success(
            request,
            f"Deletion of {repository.gun} queued: its trust data goes from Notary, then the "
            "repository from Gatehouse.",
        )
        return redirect("repositories:detail", pk=repository.pk)
    return render(request, "trust/repositories/confirm_delete.html", {"repository": repository})


# --- Jobs ---------------------------------------------------------------------------------


@require_safe
@admin_required
def job_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = JobFilter(request.GET, queryset=selectors.job_list(viewer=request.user))
    page = Paginator(filters.qs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "trust/jobs/list.html",
        {"filters": filters, "page": page, "filtered": _filtered(request, filters)},
    )


@require_safe
@login_required
def job_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One job: its history, cause, repository and timings. A job the viewer may not see is
    a 404, as if it did not exist."""
    job = selectors.job_detail(viewer=request.user, pk=pk)
    if job is None:
        raise Http404("No such job.")
    timings = selectors.job_timings(job)
    return render(
        request,
        "trust/jobs/detail.html",
        {
            "job": job,
            "events": job.events.all(),
            "waited": _duration(timings.waited),
            "ran": _duration(timings.ran),
            "total": _duration(timings.total),
        },
    )


def _duration(span: dt.timedelta | None) -> str | None:
    """As a person says it: 0.4 s, 12 s, 3 min 4 s, 2 h 5 min."""
    if span is None:
        return None
    seconds = span.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


# --- Trust root ---------------------------------------------------------------------------


def _root_page(
    request: HttpRequest,
    *,
    export_form: RootKeyExportForm | None = None,
    pin_form: RootKeyPinForm | None = None,
) -> HttpResponse:
    """The page, with the export or pin form that failed in place of its blank version.

    It never makes the root key (a GET): until something has, it says how to make it.
    """
    key_id = selectors.root_key_id()
    return render(
        request,
        "trust/root.html",
        {
            "root_key_id": key_id,
            "daemon_json": json.dumps(pins.trust_pinning_snippet(), indent=2),
            "exported": selectors.root_key_exported(),
            "export_form": export_form or RootKeyExportForm(),
            "pins": pins.root_key_pin_list(),
            "pin_form": pin_form or RootKeyPinForm(),
        },
    )


@require_safe
@admin_required
def trust_root(request: HttpRequest) -> HttpResponse:
    return _root_page(request)


@require_POST
@admin_required
def trust_root_export(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The root key as an encrypted PEM download; a failed export shows the page again."""
    form = RootKeyExportForm(request.POST)
    if form.is_valid():
        try:
            pem = root_key.root_key_export(
                actor=request.user, passphrase=form.cleaned_data["passphrase"]
            )
        except ValidationError as error:
            form.add_service_error(error)
        except custody.RootKeyMissing as error:
            form.add_error(None, str(error))
        else:
            # Shown on the next page the admin loads (console.js reloads this one).
            messages.success(
                request,
                "Root key exported as gatehouse-root-key.pem. Keep it offline, apart from "
                "its passphrase.",
            )
            response = HttpResponse(pem, content_type="application/x-pem-file")
            response["Content-Disposition"] = 'attachment; filename="gatehouse-root-key.pem"'
            response["Cache-Control"] = "no-store"
            return response
    return _root_page(request, export_form=form)


@require_POST
@admin_required
def root_pin_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RootKeyPinForm(request.POST)
    if form.is_valid():
        try:
            pin = pins.root_key_pin_create(
                actor=request.user,
                pattern=form.cleaned_data["pattern"],
                key_ids=form.cleaned_data["key_ids"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Root key pin {pin.pattern} added.")
            return redirect("trust:root")
    return _root_page(request, pin_form=form)


@require_POST
@admin_required
def root_pin_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    pin = get_object_or_404(pins.root_key_pin_list(), pk=pk)
    pins.root_key_pin_delete(actor=request.user, pin=pin)
    messages.success(request, f"Root key pin {pin.pattern} deleted.")
    return redirect("trust:root")
