"""Reads of the content-trust policy, and of who owns the keys that signed an image."""

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from policy.evaluation import Evaluation, PolicyRules
from policy.models import AdmissionDecision, ContentTrustPolicy, PolicyVersion
from policy.redaction import redact
from trust.selectors import repository_list


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


def policy_admission() -> tuple[PolicyRules, tuple[str, ...]]:
    """The policy as admission takes it: the rules and the exempt namespaces, in one read."""
    policy = policy_get()
    rules = PolicyRules(
        enabled=policy.enabled,
        mode=policy.mode,
        signing_teams=tuple(sorted(team.name for team in policy.signing_teams.all())),
        allow_repos=tuple(policy.allow_repos),
        trust_on_first_use=settings.GATEHOUSE_TRUST_ON_FIRST_USE,
    )
    return rules, tuple(policy.exempt_namespaces)


def admission_decisions_latest(limit: int = 20) -> QuerySet[AdmissionDecision]:
    """The latest admission decisions, newest first."""
    return admission_decisions()[:limit]


def admission_decisions() -> QuerySet[AdmissionDecision]:
    """The admission decision log, newest first. Admins' alone (the API and the console
    check): it names namespaces, workloads and why they failed."""
    return AdmissionDecision.objects.order_by("-created_at", "-id")


def explanation_visible(*, viewer: User, gun: str) -> bool:
    """Whether ``viewer`` may learn who signs ``gun``: admins, and whoever may see its
    repository (``trust.selectors.repository_list``: the members of its signer teams). A
    GUN Gatehouse does not manage is nobody's but the admins'."""
    return viewer.is_admin or repository_list(viewer=viewer).filter(gun=gun).exists()


def evaluation_for(*, viewer: User, evaluation: Evaluation) -> tuple[Evaluation, bool]:
    """The evaluation as ``viewer`` may read it, and whether names were left out
    (``policy.redaction``): the decision is everyone's, the signers are not."""
    if explanation_visible(viewer=viewer, gun=evaluation.gun):
        return evaluation, False
    return redact(evaluation), True
