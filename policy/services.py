"""Writes of the content-trust policy, and the evaluation of an image against it."""

import logging
import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Team, User
from policy.evaluation import (
    Evaluation,
    InvalidReference,
    evaluate,
    is_exempt,
    parse_image_reference,
    trust_data_from_verified,
)
from policy.models import ContentTrustPolicy, PolicyVersion
from policy.selectors import key_owners, policy_get, policy_rules, policy_settings
from trust.notary.errors import InvalidMetadata, NotFound
from trust.trust_data import verified_repository

logger = logging.getLogger(__name__)

# GUN characters plus the glob characters fnmatch understands.
ALLOW_REPO_PATTERN = re.compile(r"\A[a-z0-9._/*?\[\]-]{1,255}\Z")
MAX_ALLOW_REPOS = 200


def _clean_allow_repos(patterns: list[str]) -> list[str]:
    bad = [p for p in patterns if not ALLOW_REPO_PATTERN.match(p)]
    if bad:
        raise ValidationError(
            {
                "allow_repos": [
                    f"{p!r} is not a GUN pattern (lowercase letters, digits, . _ / - and the "
                    "wildcards * ? [ ])."
                    for p in bad
                ]
            }
        )
    if len(patterns) > MAX_ALLOW_REPOS:
        raise ValidationError({"allow_repos": [f"At most {MAX_ALLOW_REPOS} patterns."]})
    return list(dict.fromkeys(patterns))


@transaction.atomic
def policy_update(
    *,
    actor: User,
    enabled: bool,
    mode: str,
    signing_team_names: list[str],
    allow_repos: list[str],
) -> tuple[ContentTrustPolicy, list[str]]:
    """Replace the policy; returns it and the names of the fields that changed.

    Every change is kept as a ``PolicyVersion``; saving what is already there changes
    nothing and records nothing.
    """
    if mode not in ContentTrustPolicy.Mode.values:
        raise ValidationError(
            {"mode": [f"Mode is one of {', '.join(ContentTrustPolicy.Mode.values)}."]}
        )
    names = list(dict.fromkeys(signing_team_names))
    teams = list(Team.objects.filter(name__in=names))
    unknown = sorted(set(names) - {team.name for team in teams})
    if unknown:
        raise ValidationError({"signing_teams": [f"Unknown team: {name}." for name in unknown]})
    policy = ContentTrustPolicy.objects.select_for_update().filter(pk=policy_get().pk).get()
    before = policy_settings(policy)
    policy.enabled, policy.mode = enabled, mode
    policy.allow_repos = _clean_allow_repos(allow_repos)
    policy.signing_teams.set(teams)
    after = policy_settings(policy)
    changed = [field for field in after if after[field] != before[field]]
    if changed:
        policy.version += 1
        policy.updated_by, policy.updated_at = actor, timezone.now()
        policy.save()
        PolicyVersion.objects.create(
            number=policy.version, policy=after, changed=changed, actor=actor
        )
        logger.info("content trust policy v%d by %s: %s", policy.version, actor, ", ".join(changed))
    return policy, changed


def image_evaluate(*, image: str) -> Evaluation:
    """Would ``image`` pass the content-trust policy, and why?

    Identity and policy are read afresh, so a change of membership, key or policy counts
    at the very next evaluation; trust data comes verified, root pinned for the
    repositories Gatehouse manages, and cached for a few seconds (``trust.trust_data``).
    A malformed reference is a ``ValidationError``; an unreachable Notary raises
    ``NotaryUnavailable`` for the caller to answer 503.
    """
    try:
        reference = parse_image_reference(image)
    except InvalidReference as error:
        raise ValidationError({"image": [str(error)]}) from error
    rules = policy_rules()
    if not rules.enabled or is_exempt(reference.gun, rules):
        return evaluate(reference, rules, None, {})
    trust, trust_error = None, None
    try:
        trust = trust_data_from_verified(verified_repository(reference.gun))
    except NotFound:
        trust_error = None
    except InvalidMetadata as error:
        trust_error = f"trust data does not verify: {error}"
    signers = {
        key_id for role in (trust.roles.values() if trust else ()) for key_id in role.signers
    }
    return evaluate(reference, rules, trust, key_owners(signers), trust_error=trust_error)
