"""The content-trust console: the policy (UCP's Admin Settings → Content Trust), and a check
of whether an image would pass it, and why.

Anyone signed in reads the policy and checks images; only admins change the policy. A save
that fails renders the page again with the errors in place; nothing has changed.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from accounts import selectors as accounts_selectors
from accounts.typing import AuthenticatedHttpRequest
from gatehouse.views import admin_required
from policy import explanations, next_steps, selectors, services
from policy.forms import ImageCheckForm, PolicyForm
from policy.next_steps import NextStep
from trust.notary.errors import NotaryUnavailable

HISTORY = 10
DECISIONS_PER_PAGE = 50

# How the console names the policy's fields, in messages and in the history.
FIELD_NAMES = {
    "enabled": "enabled",
    "mode": "mode",
    "signing_teams": "signing teams",
    "allow_repos": "exemptions",
    "exempt_namespaces": "exempt namespaces",
}


def changed_text(changed: list[str]) -> str:
    """``["enabled", "signing_teams"]`` → ``"enabled, signing teams"``."""
    return ", ".join(FIELD_NAMES.get(field, field) for field in changed)


def plain_reason(reason: str) -> str:
    """A reason as a sentence: capitalised, unless it starts with a role name."""
    return reason if reason.startswith("targets") else reason[:1].upper() + reason[1:]


def _policy_page(
    request: AuthenticatedHttpRequest, *, form: PolicyForm | None = None, status: int = 200
) -> HttpResponse:
    policy = selectors.policy_get()
    current = selectors.policy_settings(policy)
    history = [
        {"version": version, "changed": changed_text(version.changed)}
        for version in selectors.policy_versions()[:HISTORY]
    ]
    context = {
        "policy": policy,
        "current": current,
        "history": history,
        "check_form": ImageCheckForm(),
    }
    if request.user.is_admin:
        context["policy_form"] = form or PolicyForm(
            teams=accounts_selectors.team_list(viewer=request.user).order_by("name"),
            initial=PolicyForm.initial_from(current),
        )
    return render(request, "policy/content_trust.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def content_trust(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The policy: read-only for everyone signed in; admins change it with a POST here."""
    if request.method != "POST":
        return _policy_page(request)
    if not request.user.is_admin:
        raise PermissionDenied("Only admins may change the content-trust policy.")
    form = PolicyForm(
        request.POST, teams=accounts_selectors.team_list(viewer=request.user).order_by("name")
    )
    if form.is_valid():
        try:
            _, changed = services.policy_update(
                actor=request.user,
                enabled=form.cleaned_data["enabled"],
                mode=form.cleaned_data["mode"],
                signing_team_names=form.cleaned_data["signing_teams"],
                allow_repos=form.cleaned_data["allow_repos"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request, f"Saved: {changed_text(changed)}." if changed else "Nothing changed."
            )
            return redirect("content_trust")
    return _policy_page(request, form=form)


@require_safe
@admin_required
def admission_decisions(request: HttpRequest) -> HttpResponse:
    """The Kubernetes admission webhook: how to connect it, and every decision it recorded,
    newest first. Admins only: the log names namespaces, workloads and why they failed."""
    page = Paginator(selectors.admission_decisions(), DECISIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "policy/admission.html",
        {"page": page, "webhook_base": request.build_absolute_uri("/").rstrip("/")},
    )


@require_safe
@login_required
def image_check(request: AuthenticatedHttpRequest) -> HttpResponse:
    """``?image=`` evaluated against the policy: the decision, the digest, who signed, why.

    A check changes nothing, so it is a GET: its address can be shared. An unreachable
    Notary is an error message (503), not a decision. Each reason it fails for comes
    with the next step (``policy.next_steps``).
    """
    form = ImageCheckForm(request.GET if "image" in request.GET else None)
    evaluation, status, trust_read, reasons, redacted = None, 200, False, [], False
    steps: tuple[NextStep, ...] = ()
    if form.is_valid():
        try:
            evaluation = services.image_evaluate(image=form.cleaned_data["image"])
        except ValidationError as error:
            form.add_service_error(error)
        except NotaryUnavailable as error:
            status = 503
            messages.error(request, f"Notary cannot be reached, so nothing is verified: {error}")
            steps = (next_steps.unreachable(str(error)),)
        else:
            # Who signed is for those who may see the repository; the decision is anyone's.
            evaluation, redacted, steps = explanations.evaluation_explained(
                viewer=request.user, evaluation=evaluation
            )
            trust_read = evaluation.examined
            reasons = [plain_reason(reason) for reason in evaluation.reasons]
    return render(
        request,
        "policy/check.html",
        {
            "form": form,
            "evaluation": evaluation,
            "redacted": redacted,
            "trust_read": trust_read,
            "reasons": reasons,
            "steps": steps,
            "policy": selectors.policy_settings(selectors.policy_get()),
        },
        status=status,
    )
