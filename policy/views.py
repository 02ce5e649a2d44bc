"""The content-trust console: the policy (UCP's Admin Settings → Content Trust), its rules
and history, and a check of whether an image would pass it, and why.

Anyone signed in reads the policy and its history and checks images; only admins change the
policy. The quick form saves at once; any other change (a rule added, edited, deleted or
moved, or the whole policy as YAML) makes a draft, and the admin sees what it would change
(the diff, and the images it would newly deny or allow) before saving it as a new version,
only if nobody saved another meanwhile. A revert is one click, and a new version too. A save
that fails shows the errors in place; nothing has changed.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import selectors as accounts_selectors
from accounts.typing import AuthenticatedHttpRequest
from audit.selectors import audit_changes
from gatehouse.views import admin_required
from policy import drafts, explanations, next_steps, rules, selectors, services
from policy.forms import (
    MODE_CHOICES,
    DraftForm,
    ImageCheckForm,
    MoveForm,
    PolicyForm,
    PolicyYamlForm,
    RevertForm,
    RuleForm,
    WhichRuleForm,
)
from policy.next_steps import NextStep
from policy.rules import Policy
from trust.notary.errors import NotaryUnavailable

HISTORY = 10
VERSIONS_PER_PAGE = 20
DECISIONS_PER_PAGE = 50

# How the console names the policy's fields: versions name them dotted, as
# ``rules.readable`` does; the quick form's saves (and versions from before rules) name
# UCP's settings, as the form labels them.
FIELD_NAMES = {
    "enabled": "enabled",
    "default.mode": "default rule's mode",
    "default.require": "default rule's signers",
    "rules": "rules",
    "mode": "default rule's mode",
    "signing_teams": "signing teams",
    "allow_repos": "exemptions",
    "exempt_namespaces": "exempt namespaces",
}
RULE_FIELD_NAMES = {
    "position": "position",
    "images": "images",
    "namespaces": "namespaces",
    "mode": "mode",
    "require": "signers",
}


def changed_text(changed: list[str]) -> str:
    """``["enabled", "default.require", "rules.prod.mode"]`` → ``"enabled, default rule's
    signers, rule prod's mode"``. A rule whose every field changed was added or removed:
    it is ``rule prod``, once."""
    rule_fields: dict[str, set[str]] = {}
    for field in changed:
        if field.startswith("rules."):
            name, _, part = field.removeprefix("rules.").partition(".")
            rule_fields.setdefault(name, set()).add(part)
    words = []
    for field in changed:
        if not field.startswith("rules."):
            words.append(FIELD_NAMES.get(field, field))
            continue
        name, _, part = field.removeprefix("rules.").partition(".")
        if rule_fields[name] >= set(RULE_FIELD_NAMES):
            words.append(f"rule {name}")
        else:
            words.append(f"rule {name}'s {RULE_FIELD_NAMES.get(part, part)}")
    return ", ".join(dict.fromkeys(words))


def plain_reason(reason: str) -> str:
    """A reason as a sentence: capitalised, unless it starts with a role name."""
    return reason if reason.startswith("targets") else reason[:1].upper() + reason[1:]


def _policy_page(
    request: AuthenticatedHttpRequest, *, form: PolicyForm | None = None, status: int = 200
) -> HttpResponse:
    """The policy, its rules and recent versions, and the answer of the "which rule applies"
    box when it was asked (``?which-image=…&which-namespace=…``)."""
    policy = selectors.policy_get()
    current = selectors.policy_settings(policy)
    rules_policy = selectors.policy_of(policy)
    which = WhichRuleForm(
        request.GET if "which-image" in request.GET else None, prefix="which", auto_id="id_%s"
    )
    applied = None
    if which.is_valid():
        applied = rules_policy.applied(which.cleaned_data["image"], which.cleaned_data["namespace"])
    history = [
        {
            "version": version,
            "changed": changed_text(version.changed),
            "after": rules.ucp_settings(selectors.policy_stored(version.policy)),
        }
        for version in selectors.policy_versions()[:HISTORY]
    ]
    context = {
        "policy": policy,
        "current": current,
        "mode_label": dict(MODE_CHOICES)[current["mode"]],
        "history": history,
        "check_form": ImageCheckForm(),
        "rules_policy": rules_policy,
        "which_form": which,
        "applied": applied,
    }
    if request.user.is_admin:
        context["policy_form"] = form or PolicyForm(
            teams=accounts_selectors.team_list(viewer=request.user).order_by("name"),
            initial=PolicyForm.initial_from(current, policy.version),
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
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        except services.StaleVersion as error:
            form.add_error(None, str(error))
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
            evaluation = services.image_evaluate(
                image=form.cleaned_data["image"], namespace=form.cleaned_data["namespace"] or None
            )
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


def _preview_page(
    request: AuthenticatedHttpRequest,
    draft: Policy,
    *,
    version: int,
    stale: services.StaleVersion | None = None,
) -> HttpResponse:
    """The draft beside the policy in force: what changes, and what that does to images."""
    current = selectors.policy_current()
    return render(
        request,
        "policy/preview.html",
        {
            "draft": draft,
            "changes": audit_changes(rules.readable(current), rules.readable(draft)),
            "preview": services.policy_preview(draft=draft),
            "days": services.PREVIEW_DAYS,
            "save_form": DraftForm(
                initial={
                    "draft": DraftForm.text_of(rules.policy_document(draft)),
                    "version": version,
                }
            ),
            "stale": stale,
        },
        status=409 if stale else 200,
    )


def _yaml_page(
    request: AuthenticatedHttpRequest, form: PolicyYamlForm, *, status: int = 200
) -> HttpResponse:
    return render(request, "policy/yaml.html", {"form": form}, status=status)


def _previewed(
    request: AuthenticatedHttpRequest,
    document: dict[str, Any],
    *,
    version: int,
    stale: services.StaleVersion | None = None,
) -> HttpResponse:
    """The preview of ``document``; or, when it is no policy (a team it names was deleted
    since), the YAML editor holding it with each error's path."""
    try:
        draft = services.policy_checked(document)
    except ValidationError as error:
        form = PolicyYamlForm({"document": PolicyYamlForm.text_of(document), "version": version})
        if form.is_valid():
            form.add_draft_error(error)
        return _yaml_page(request, form, status=400)
    return _preview_page(request, draft, version=version, stale=stale)


def _rule_editor(request: AuthenticatedHttpRequest, *, name: str | None) -> HttpResponse:
    """Add a rule (``name`` None) or edit the rule ``name``: on a valid POST, its preview."""
    document = rules.policy_document(selectors.policy_current())
    names = [rule["name"] for rule in document["rules"]]
    if name is not None and name not in names:
        raise Http404(f"The policy has no rule {name}.")
    last = len(names) if name is not None else len(names) + 1
    initial = (
        RuleForm.initial_from(document["rules"][names.index(name)], names.index(name) + 1)
        if name is not None
        else {"mode": rules.ENFORCED, "match": rules.ALL, "position": last}
    )
    form = RuleForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        taken=set(names) - {name} if name else set(names),
        last_position=last,
    )
    if form.is_valid():
        draft, index = drafts.rule_put(
            document, form.rule_json(), position=form.cleaned_data["position"], replacing=name
        )
        try:
            policy = services.policy_checked(draft)
        except ValidationError as error:
            form.add_draft_error(error, index)
        else:
            return _preview_page(request, policy, version=selectors.policy_get().version)
    return render(
        request,
        "policy/rule_form.html",
        {"form": form, "name": name},
        status=400 if form.is_bound else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def rule_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _rule_editor(request, name=None)


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def rule_edit(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    return _rule_editor(request, name=name)


@require_POST
@admin_required
def rule_delete(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    """The draft without the rule ``name``, previewed."""
    row = selectors.policy_get()
    try:
        draft = drafts.rule_removed(rules.policy_document(selectors.policy_of(row)), name)
    except drafts.UnknownRule as error:
        raise Http404(f"The policy has no rule {name}.") from error
    return _previewed(request, draft, version=row.version)


@require_POST
@admin_required
def rule_move(request: AuthenticatedHttpRequest, name: str) -> HttpResponse:
    """The draft with the rule ``name`` one place up or down, previewed."""
    form = MoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Move a rule up or down.")
        return redirect("content_trust")
    row = selectors.policy_get()
    try:
        draft = drafts.rule_moved(
            rules.policy_document(selectors.policy_of(row)), name, form.cleaned_data["direction"]
        )
    except drafts.UnknownRule as error:
        raise Http404(f"The policy has no rule {name}.") from error
    return _previewed(request, draft, version=row.version)


@require_http_methods(["GET", "HEAD", "POST"])
@admin_required
def policy_yaml(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The whole policy as YAML; a valid POST is previewed against the version it was read at."""
    if request.method != "POST":
        row = selectors.policy_get()
        document = rules.policy_document(selectors.policy_of(row))
        return _yaml_page(
            request,
            PolicyYamlForm(
                initial={"document": PolicyYamlForm.text_of(document), "version": row.version}
            ),
        )
    form = PolicyYamlForm(request.POST)
    if form.is_valid():
        try:
            policy = services.policy_checked(form.cleaned_data["document"])
        except ValidationError as error:
            form.add_draft_error(error)
        else:
            return _preview_page(request, policy, version=form.cleaned_data["version"])
    return _yaml_page(request, form, status=400)


@require_POST
@admin_required
def policy_save(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Save a previewed draft. A policy saved by someone else since is refused, with the
    draft previewed again against it; a draft that is no policy (a team deleted since) goes
    back to the YAML editor with each error's path."""
    form = DraftForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The draft was lost on its way: make the change again.")
        return redirect("content_trust")
    document = form.cleaned_data["draft"]
    try:
        row, changed = services.policy_apply(
            actor=request.user, document=document, expected_version=form.cleaned_data["version"]
        )
    except services.StaleVersion as stale:
        return _previewed(request, document, version=stale.current, stale=stale)
    except ValidationError:
        return _previewed(request, document, version=form.cleaned_data["version"])
    if changed:
        messages.success(request, f"Saved as version {row.version}.")
    else:
        messages.success(request, "Nothing changed: the draft is the policy already.")
    return redirect("content_trust")


@require_safe
@login_required
def policy_history(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every version, newest first, with who saved it, when, and what it changed."""
    page = Paginator(selectors.policy_versions(), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "policy/history.html",
        {
            "page": page,
            "rows": [(version, selectors.policy_version_diff(version)) for version in page],
            "current": selectors.policy_get().version,
        },
    )


@require_POST
@admin_required
def policy_revert(request: AuthenticatedHttpRequest, number: int) -> HttpResponse:
    """Make version ``number`` the policy again, at once: a new version."""
    form = RevertForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not reverted: revert from the history page.")
        return redirect("content_trust_history")
    try:
        row, changed = services.policy_revert(
            actor=request.user, number=number, expected_version=form.cleaned_data["version"]
        )
    except services.StaleVersion as stale:
        messages.error(request, f"Not reverted: {stale} The history below is the latest.")
    except ValidationError as error:
        messages.error(request, f"Not reverted: {' '.join(error.messages)}")
    else:
        messages.success(
            request,
            f"Reverted to version {number}: saved as version {row.version}."
            if changed
            else f"Nothing changed: version {number} is the policy already.",
        )
    return redirect("content_trust_history")
