"""Reads of the content-trust policy, and of who owns the keys that signed an image."""

from collections import defaultdict

from django.db.models import QuerySet

from accounts.models import Membership
from bundles.models import PublicKey
from policy.evaluation import KeyOwner, PolicyRules
from policy.models import AdmissionDecision, ContentTrustPolicy, PolicyVersion


def policy_get() -> ContentTrustPolicy:
    """The one policy; it exists from the first read on, disabled."""
    policy, _ = ContentTrustPolicy.objects.prefetch_related("signing_teams").get_or_create(pk=1)
    return policy


def policy_settings(policy: ContentTrustPolicy) -> dict:
    return {
        "enabled": policy.enabled,
        "mode": policy.mode,
        "signing_teams": sorted(team.name for team in policy.signing_teams.all()),
        "allow_repos": list(policy.allow_repos),
    }


def policy_versions() -> QuerySet[PolicyVersion]:
    return PolicyVersion.objects.select_related("actor")


def policy_rules() -> PolicyRules:
    """The policy as the pure evaluation takes it."""
    policy = policy_get()
    return PolicyRules(
        enabled=policy.enabled,
        mode=policy.mode,
        signing_teams=tuple(sorted(team.name for team in policy.signing_teams.all())),
        allow_repos=tuple(policy.allow_repos),
    )


def policy_admission() -> tuple[PolicyRules, tuple[str, ...]]:
    """The policy as admission takes it: the rules and the exempt namespaces, in one read."""
    policy = policy_get()
    rules = PolicyRules(
        enabled=policy.enabled,
        mode=policy.mode,
        signing_teams=tuple(sorted(team.name for team in policy.signing_teams.all())),
        allow_repos=tuple(policy.allow_repos),
    )
    return rules, tuple(policy.exempt_namespaces)


def admission_decisions_latest(limit: int = 20) -> QuerySet[AdmissionDecision]:
    """The latest admission decisions, newest first, for the console."""
    return AdmissionDecision.objects.order_by("-created_at", "-id")[:limit]


def key_owners(tuf_key_ids: set[str]) -> dict[str, KeyOwner]:
    """The keys among ``tuf_key_ids`` that may count as a signature: not revoked, of an
    active user, with the teams that user belongs to now. Others are left out."""
    if not tuf_key_ids:
        return {}
    rows = PublicKey.objects.filter(
        tuf_key_id__in=tuf_key_ids, revoked_at__isnull=True, user__is_active=True
    ).values_list("tuf_key_id", "user__username", "user_id")
    teams: dict[int, set[str]] = defaultdict(set)
    for user_id, team in Membership.objects.filter(
        user_id__in={row[2] for row in rows}
    ).values_list("user_id", "team__name"):
        teams[user_id].add(team)
    return {
        key_id: KeyOwner(username, frozenset(teams[user_id])) for key_id, username, user_id in rows
    }
