"""Writes of the content-trust policy, and the evaluation of an image against it."""

import dataclasses
import datetime as dt
import logging
import re
import time
from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Team, User
from accounts.services import api_token_create, api_tokens_revoke
from audit.services import audit_record, audit_record_folded, request_actor
from policy import admission
from policy.evaluation import (
    Evaluation,
    Identities,
    InvalidReference,
    PolicyRules,
    evaluate,
    is_exempt,
    parse_image_reference,
    trust_data_from_verified,
)
from policy.inputs import evaluation_context, evaluation_inputs_changed
from policy.metrics import ADMISSION_REVIEW_SECONDS, ADMISSION_REVIEWS, evaluation_observed
from policy.models import (
    DEFAULT_EXEMPT_NAMESPACES,
    AdmissionDecision,
    ContentTrustPolicy,
    PolicyVersion,
)
from policy.selectors import (
    policy_get,
    policy_settings,
)
from trust.notary import name_patterns, references
from trust.notary.errors import InvalidMetadata, NotaryRejected, NotaryUnavailable, NotFound
from trust.replays import replays_found
from trust.trust_data import verified_repository

logger = logging.getLogger(__name__)

MAX_ALLOW_REPOS = 200
# A Kubernetes namespace name: an RFC 1123 label.
NAMESPACE_PATTERN = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
MAX_EXEMPT_NAMESPACES = 200


def _clean_allow_repos(patterns: list[str]) -> list[str]:
    """The patterns as Docker normalises them (``nginx`` → ``docker.io/library/nginx``),
    each once; every bad one named with the reason (``trust.notary.references``)."""
    if len(patterns) > MAX_ALLOW_REPOS:
        raise ValidationError({"allow_repos": [f"At most {MAX_ALLOW_REPOS} patterns."]})
    cleaned, errors = [], []
    for pattern in patterns:
        try:
            cleaned.append(name_patterns.parse_pattern(pattern.strip()))
        except references.InvalidPattern as error:
            errors.append(f"{references.shown(pattern.strip())}: {error}.")
    if errors:
        raise ValidationError({"allow_repos": errors})
    return list(dict.fromkeys(cleaned))


def _clean_exempt_namespaces(namespaces: list[str]) -> list[str]:
    bad = [n for n in namespaces if not isinstance(n, str) or not NAMESPACE_PATTERN.match(n)]
    if bad:
        raise ValidationError(
            {
                "exempt_namespaces": [
                    f"{n!r} is not a namespace name (at most 63 lowercase letters, digits and "
                    "'-', starting and ending with a letter or digit)."
                    for n in bad
                ]
            }
        )
    if len(namespaces) > MAX_EXEMPT_NAMESPACES:
        raise ValidationError(
            {"exempt_namespaces": [f"At most {MAX_EXEMPT_NAMESPACES} namespaces."]}
        )
    return list(dict.fromkeys(namespaces))


def _versioned_settings(policy: ContentTrustPolicy) -> dict:
    """What a ``PolicyVersion`` records: ``exempt_namespaces`` only when it is not the
    default (``["kube-system"]``), so its absence from a version means the default."""
    settings = policy_settings(policy)
    if list(policy.exempt_namespaces) != list(DEFAULT_EXEMPT_NAMESPACES):
        settings["exempt_namespaces"] = list(policy.exempt_namespaces)
    return settings


@transaction.atomic
def policy_update(
    *,
    actor: User,
    enabled: bool,
    mode: str,
    signing_team_names: list[str],
    allow_repos: list[str],
    exempt_namespaces: list[str] | None = None,
) -> tuple[ContentTrustPolicy, list[str]]:
    """Replace the policy; returns it and the names of the fields that changed.

    Every change is kept as a ``PolicyVersion``; saving what is already there changes
    nothing and records nothing. ``exempt_namespaces`` (the Kubernetes namespaces admission
    lets through unchecked, ``["kube-system"]`` at first) is kept as it is when not given.
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
    before = {**policy_settings(policy), "exempt_namespaces": list(policy.exempt_namespaces)}
    policy.enabled, policy.mode = enabled, mode
    policy.allow_repos = _clean_allow_repos(allow_repos)
    if exempt_namespaces is not None:
        policy.exempt_namespaces = _clean_exempt_namespaces(exempt_namespaces)
    policy.signing_teams.set(teams)
    after = {**policy_settings(policy), "exempt_namespaces": list(policy.exempt_namespaces)}
    changed = [field for field in after if after[field] != before[field]]
    if changed:
        policy.version += 1
        policy.updated_by, policy.updated_at = actor, timezone.now()
        policy.save()
        PolicyVersion.objects.create(
            number=policy.version, policy=_versioned_settings(policy), changed=changed, actor=actor
        )
        evaluation_inputs_changed()
        audit_record(
            action="policy.updated",
            actor=actor,
            target_type="policy",
            target_id="content-trust",
            before=before,
            after=after,
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

    A denial is audited, folded (``audit_record_folded``): anyone may ask again and again,
    so identical denials within ``GATEHOUSE_AUDIT_FOLD_SECONDS`` are one entry that counts
    them, and one caller's distinct denials beyond ``GATEHOUSE_AUDIT_FOLD_DISTINCT`` in that
    window fold into one more.
    """
    started = time.perf_counter()
    context = evaluation_context()
    try:
        evaluation = image_evaluate_under(
            image=image, rules=context.rules, identities=context.identities
        )
    except NotaryUnavailable:
        evaluation_observed("notary_unavailable", time.perf_counter() - started)
        raise
    evaluation_observed(evaluation.decision, time.perf_counter() - started)
    if not evaluation.allowed:
        audit_record_folded(
            action="policy.evaluation_denied",
            actor=request_actor(),
            target_type="repository",
            target_id=evaluation.gun,
            after={
                "image": evaluation.image,
                "mode": evaluation.mode,
                "reasons": list(evaluation.reasons),
            },
        )
    return evaluation


def image_evaluate_under(*, image: str, rules: PolicyRules, identities: Identities) -> Evaluation:
    """``image_evaluate`` with the policy and identities the caller has read already, so
    admission reads them once per review, not once per image."""
    try:
        reference = parse_image_reference(image)
    except InvalidReference as error:
        raise ValidationError({"image": [str(error)]}) from error
    if not rules.enabled or is_exempt(reference.gun, rules):
        return evaluate(reference, rules, None, identities)
    trust, trust_error = None, None
    replays = replays_found()
    try:
        trust = trust_data_from_verified(verified_repository(reference.gun))
    except NotFound:
        trust_error = None
    except InvalidMetadata as error:
        trust_error = f"trust data does not verify: {error}"
    except NotaryRejected as error:
        # Notary refused Gatehouse's own read (401, 403, 429): nothing can be verified, as
        # when it cannot be reached, so every caller fails closed the same way.
        raise NotaryUnavailable(f"Notary refused Gatehouse's read: {error}") from error
    if replays_found() != replays:  # this read found a replay: count it at once
        identities = evaluation_context().identities
    return evaluate(reference, rules, trust, identities, trust_error=trust_error)


# --- Kubernetes admission ----------------------------------------------------------------


def _verdicts(
    images: list[str], rules: PolicyRules, identities: Identities
) -> tuple[dict[str, admission.Verdict], bool]:
    """Evaluate each distinct image once (``nginx`` and ``nginx:latest`` are one image);
    also whether Notary could not be reached. An unreachable Notary fails every image that
    would need it, without waiting on Notary again for each."""
    verdicts: dict[str, admission.Verdict] = {}
    by_reference: dict[str, admission.Verdict] = {}
    unavailable: str | None = None
    for image in images:
        try:
            reference = parse_image_reference(image)
        except InvalidReference as error:
            verdicts[image] = admission.verdict_of_error(image, str(error), rules)
            continue
        verdict = by_reference.get(reference.image)
        if verdict is None:
            needs_notary = rules.enabled and not is_exempt(reference.gun, rules)
            if unavailable is not None and needs_notary:
                verdict = admission.verdict_of_error(image, unavailable, rules)
            else:
                try:
                    evaluation = image_evaluate_under(
                        image=image, rules=rules, identities=identities
                    )
                    verdict = admission.verdict_of(image, evaluation, rules)
                except ValidationError as error:
                    verdict = admission.verdict_of_error(image, " ".join(error.messages), rules)
                except NotaryUnavailable as error:
                    unavailable = f"Notary cannot be reached, so nothing is verified: {error}"
                    verdict = admission.verdict_of_error(image, unavailable, rules)
            by_reference[reference.image] = verdict
        # Pinned as each is written, so short names stay short.
        pin = verdict.pin and admission.pinned_image(image, verdict.pin.rpartition("@")[2])
        verdicts[image] = dataclasses.replace(verdict, image=image, pin=pin)
    return verdicts, unavailable is not None


def admission_review(*, body: bytes | str, mutate: bool) -> dict[str, Any]:
    """Answer a Kubernetes ``AdmissionReview`` with the content-trust policy.

    Every image of the object's pod specs (``admission.find_images``: containers, init and
    ephemeral containers, image volumes; the pod template of every workload kind, and of
    any kind at ``spec.template.spec`` or ``spec.jobTemplate.spec.template.spec``) is
    evaluated once. Enforced mode denies when any fails, naming each, what uses it and why;
    permissive mode allows with one warning per failing image; exempt namespaces and
    ``allow_repos`` pass and say so. With ``mutate`` each verified tag is pinned to its
    signed digest by a JSON Patch. Errors fail closed: an unreachable Notary denies when
    enforced, and so does an object whose images cannot be found (not of a kind known to
    carry none, and no pod spec). ``admission.MalformedReview`` when the body is not a
    review to answer. The decision is recorded, except for dry runs (the webhook declares
    ``sideEffects: None``). Each review answered is counted (``policy.metrics``) with the
    reason of its decision, so a review failing closed for want of Notary shows.
    """
    started = time.perf_counter()
    review = admission.parse_review(body)
    workload = (
        admission.find_images(review.group, review.kind, review.object)
        if review.operation in admission.CHECKED_OPERATIONS
        else None
    )
    reason = "not_checked"
    if workload is None:
        decision = admission.allow(f"Gatehouse content trust: {review.operation} is not checked")
    elif workload.unrecognised is None and not workload.images:
        decision = admission.allow(
            f"Gatehouse content trust: a {review.kind or 'object'} without container images"
        )
    else:
        context = evaluation_context()
        rules = context.rules
        if review.namespace and review.namespace in context.exempt_namespaces:
            decision = admission.allow(
                f"Gatehouse content trust: namespace {review.namespace} is exempt "
                "(exempt_namespaces); no image was checked"
            )
        elif workload.unrecognised is not None:
            reason = "unrecognised"
            decision = admission.decide_unrecognised(rules=rules, reason=workload.unrecognised)
        else:
            images = admission.distinct_images(workload.images)
            verdicts, notary_unavailable = _verdicts(images, rules, context.identities)
            reason = "notary_unavailable" if notary_unavailable else "evaluated"
            decision = admission.decide(
                rules=rules, uses=workload.images, verdicts=verdicts, mutate=mutate
            )
    if not review.dry_run:
        AdmissionDecision.objects.create(
            uid=review.uid[:128],
            webhook="mutate" if mutate else "validate",
            namespace=review.namespace[:253],
            kind=review.kind[:64],
            name=review.name[:253],
            operation=review.operation[:16],
            allowed=decision.allowed,
            failing=decision.failing_json(),
            message=decision.message,
            pinned=len(decision.patch),
        )
    if not decision.allowed:
        audit_record(
            action="admission.denied",
            actor=request_actor(),
            target_type="workload",
            target_id=f"{review.namespace}/{review.kind}/{review.name}",
            after={
                "uid": review.uid[:128],
                "operation": review.operation,
                "webhook": "mutate" if mutate else "validate",
                "dry_run": review.dry_run,
                "message": decision.message,
                "failing": decision.failing_json(),
            },
        )
        logger.info(
            "admission denied %s %s %s/%s: %s",
            review.operation,
            review.kind,
            review.namespace,
            review.name,
            decision.message,
        )
    ADMISSION_REVIEWS.labels(
        webhook="mutate" if mutate else "validate",
        decision="allowed" if decision.allowed else "denied",
        reason=reason,
    ).inc()
    ADMISSION_REVIEW_SECONDS.observe(time.perf_counter() - started)
    return admission.response_json(review.uid, decision)


def admission_decisions_prune(*, older_than: dt.timedelta) -> int:
    """Delete the decisions recorded before ``older_than`` ago; returns how many."""
    deleted, _ = AdmissionDecision.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted


SERVICE_ACCOUNT_TOKEN_DAYS = 365
SERVICE_ACCOUNT_TOKEN_MAX_DAYS = 3650


def review_admission_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="policy", codename="review_admission")


@transaction.atomic
def admission_service_account(
    *, username: str, days: int = SERVICE_ACCOUNT_TOKEN_DAYS, revoke_others: bool = False
) -> tuple[User, str, ApiToken, bool]:
    """The Kubernetes API server's account: a user with ``policy.review_admission`` and an
    unusable password, and one new API token for it.

    Returns the user, the raw token (shown once), the token and whether the user is new.
    An existing user is reused only when it is a service account (no usable password), so
    a person's account is never turned into one. The token lives ``days`` (the service
    account token lifetime, 365 days by default), not ``GATEHOUSE_TOKEN_TTL``: the API
    server cannot log in again. ``revoke_others`` revokes the account's earlier tokens.
    """
    if not 1 <= days <= SERVICE_ACCOUNT_TOKEN_MAX_DAYS:
        raise ValidationError(
            {"days": [f"The token lifetime is 1 to {SERVICE_ACCOUNT_TOKEN_MAX_DAYS} days."]}
        )
    user = User.objects.with_username(username).select_for_update().first()
    created = user is None
    if user is None:
        user = User(username=username, full_name="Kubernetes admission webhook")
        user.set_unusable_password()
        user.full_clean()
        user.save()
        logger.info("admission service account %s created", username)
    elif user.has_usable_password():
        raise ValidationError(
            {
                "username": [
                    f"'{username}' is an account with a password, not a service account; "
                    "choose another name."
                ]
            }
        )
    elif not user.is_active:
        raise ValidationError({"username": [f"'{username}' is deactivated."]})
    user.user_permissions.add(review_admission_permission())
    raw_token, token = api_token_create(user=user)
    token.expires_at = timezone.now() + dt.timedelta(days=days)
    token.save(update_fields=["expires_at"])
    if revoke_others:
        api_tokens_revoke(user=user, keep=token)
    logger.info("admission token %s issued to %s for %d days", token.pk, username, days)
    return user, raw_token, token, created
