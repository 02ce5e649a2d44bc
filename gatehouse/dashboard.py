"""The dashboard: the console's start page, which reads from the apps below it.

Admins see the state of the installation (repositories by state, failed jobs, the policy,
the latest denials, drift, the root key's backup, the directory's last sync) and, until it
is set up, the steps that set it up, each done or not from what the database holds.
Everyone else sees their teams, their signing keys and the repositories they sign. A
bounded number of queries, whatever the installation holds.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from accounts import selectors as accounts_selectors
from accounts.models import User
from accounts.typing import AuthenticatedHttpRequest
from bundles import selectors as bundles_selectors
from directory import selectors as directory_selectors
from policy import selectors as policy_selectors
from policy.rules import ENFORCED, Policy, ucp_settings
from trust import selectors as trust_selectors

DRIFTED_SHOWN = 5
DENIALS_SHOWN = 5
DENIALS_WINDOW = dt.timedelta(hours=24)
REPOSITORIES_SHOWN = 10
SIGN_IMAGES_GUIDE = "#sign-guide"  # the anchor of the guide on My profile


@dataclass(frozen=True)
class Step:
    """One step of setting Gatehouse up, in the order UCP's users know."""

    id: str
    title: str
    hint: str
    url: str
    link_text: str
    done: bool


def getting_started(*, viewer: User, policy: Policy, repositories: int) -> list[Step]:
    """From a new user to a checked image: each step is done once the database shows it."""
    enforced = policy.enabled and any(
        rule.mode == ENFORCED and rule.requirement.teams for rule in (policy.default, *policy.rules)
    )
    signed = (
        bundles_selectors.signing_keys_current().exists() and trust_selectors.signed_tags_seen()
    )
    return [
        Step(
            "step-user",
            "Add a user",
            "Someone who signs images: a person, or a CI account such as jenkins.",
            reverse("users:create"),
            "Add a user",
            accounts_selectors.users_besides_admins_exist(),
        ),
        Step(
            "step-team",
            "Create a team and add the user",
            "Teams say who signs: the policy and each repository name teams, not people.",
            reverse("teams:create"),
            "Create a team",
            accounts_selectors.team_members_exist(),
        ),
        Step(
            "step-policy",
            "Enforce the policy with that team as a signing team",
            "Turn content trust on in Enforced mode and choose the team: images then need a "
            "signature from one of its members.",
            reverse("content_trust"),
            "Content trust policy",
            enforced,
        ),
        Step(
            "step-repository",
            "Create a repository",
            "Gatehouse initialises it on Notary and delegates it to its signer teams' keys.",
            reverse("repositories") + "#new",
            "New repository",
            repositories > 0,
        ),
        Step(
            "step-sign",
            "The user downloads a bundle with “Use as signing key” ticked, and signs",
            "On their My profile page, the Sign images guide gives them the exact commands. "
            "Ticked once Gatehouse has read a tag signed in a signer's own role.",
            reverse("profile") + SIGN_IMAGES_GUIDE,
            "Sign images guide",
            signed,
        ),
        Step(
            "step-check",
            "Check an image",
            "Gatehouse reads its signatures from Notary and says whether it passes, and why. "
            "Ticked once Gatehouse has read a signed tag, denied a check or reviewed a workload.",
            reverse("content_trust_check"),
            "Check an image",
            signed or policy_selectors.images_checked(viewer=viewer),
        ),
    ]


def _admin_context(viewer: User) -> dict[str, Any]:
    by_state = trust_selectors.repository_counts_by_state()
    drifted = trust_selectors.repositories_drifted()
    drift_count = drifted.count()
    policy = policy_selectors.policy_current()
    settings = ucp_settings(policy)
    root_key_id = trust_selectors.root_key_id()
    steps = getting_started(viewer=viewer, policy=policy, repositories=sum(by_state.values()))
    return {
        "user_count": accounts_selectors.user_list(viewer=viewer).count(),
        "team_count": accounts_selectors.team_list(viewer=viewer).count(),
        "repository_states": [
            {"state": state, "count": count} for state, count in by_state.items()
        ],
        "repository_count": sum(by_state.values()),
        "failed_job_count": trust_selectors.jobs_failed_count(),
        "drift_count": drift_count,
        "drifted": list(drifted[:DRIFTED_SHOWN]) if drift_count else [],
        "policy": settings,
        "signing_teams": settings["signing_teams"],
        "rule_count": len(policy.rules),
        "denials": list(policy_selectors.denials(viewer=viewer)[:DENIALS_SHOWN]),
        "denial_count": policy_selectors.denials_since(
            viewer=viewer, since=timezone.now() - DENIALS_WINDOW
        ),
        "root_key_id": root_key_id,
        "root_key_exported": root_key_id is not None and trust_selectors.root_key_exported(),
        "steps": steps,
        "steps_done": sum(step.done for step in steps),
        "setting_up": not all(step.done for step in steps),
        **_directory_context(),
    }


def _directory_context() -> dict[str, Any]:
    """The directory's last sync, and its failure to be read, once one is configured."""
    status = directory_selectors.directory_status()
    if not status.configured:
        return {"directory": None}
    last = status.last_run
    return {
        "directory": status,
        "directory_error": last.error.rstrip(".") if last is not None and status.failing else "",
    }


def _signer_context(viewer: User) -> dict[str, Any]:
    repositories = trust_selectors.repositories_of_user(viewer).order_by("gun")
    repository_count = repositories.count()
    return {
        "signing_key_count": bundles_selectors.signing_keys_current(owner=viewer).count(),
        "repository_count": repository_count,
        "repositories": list(repositories[:REPOSITORIES_SHOWN]) if repository_count else [],
        "sign_images_url": reverse("profile") + SIGN_IMAGES_GUIDE,
    }


@require_safe
@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    viewer = request.user
    context = {"my_teams": accounts_selectors.team_list(viewer=viewer, member=viewer)}
    context.update(_admin_context(viewer) if viewer.is_admin else _signer_context(viewer))
    return render(request, "dashboard.html", context)
