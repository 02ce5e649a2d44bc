"""Writes of the content-trust policy, and the evaluation of an image against it."""

import dataclasses
import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, Team, User, team_name_syntax
from accounts.services import api_token_create, api_tokens_revoke
from audit.selectors import audit_changes
from audit.services import audit_record, audit_record_folded, request_actor
from policy import admission, rules
from policy.evaluation import (
    Evaluation,
    Identities,
    InvalidReference,
    evaluate,
    needs_trust_data,
    parse_image_reference,
    trust_data_from_verified,
)
from policy.inputs import evaluation_context, evaluation_inputs_changed
from policy.metrics import ADMISSION_REVIEW_SECONDS, ADMISSION_REVIEWS, evaluation_observed
from policy.models import AdmissionDecision, ContentTrustPolicy, PolicyVersion
from policy.preview import Preview, preview
from policy.rules import OFF, Policy
from policy.selectors import policy_get, policy_of, policy_version, preview_subjects
from trust.notary import references
from trust.notary.errors import InvalidMetadata, NotaryRejected, NotaryUnavailable, NotFound
from trust.replays import replays_found
from trust.trust_data import verified_repository

logger = logging.getLogger(__name__)

MAX_ALLOW_REPOS = rules.MAX_PATTERNS
MAX_EXEMPT_NAMESPACES = rules.MAX_PATTERNS


class StaleVersion(Exception):
    """The policy changed since the version the writer read (an ``If-Match`` that no longer
    holds): their change would silently undo someone else's."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"The policy is at version {current}, not {expected}: read it again, then apply "
            "your change to that."
        )
        self.expected, self.current = expected, current


def _clean_allow_repos(patterns: list[str]) -> list[str]:
    """The patterns as Docker normalises them (``nginx`` → ``docker.io/library/nginx``),
    each once; every bad one named with the reason (``rules.image_pattern``)."""
    if len(patterns) > MAX_ALLOW_REPOS:
        raise ValidationError({"allow_repos": [f"At most {MAX_ALLOW_REPOS} patterns."]})
    cleaned, errors = [], []
    for pattern in patterns:
        try:
            cleaned.append(rules.image_pattern(pattern))
        except ValueError as error:
            errors.append(str(error))
    if errors:
        raise ValidationError({"allow_repos": errors})
    return list(dict.fromkeys(cleaned))


def _clean_exempt_namespaces(namespaces: list[str]) -> list[str]:
    problems = [problem for name in namespaces if (problem := rules.namespace_problem(name))]
    if problems:
        raise ValidationError({"exempt_namespaces": problems})
    if len(namespaces) > MAX_EXEMPT_NAMESPACES:
        raise ValidationError(
            {"exempt_namespaces": [f"At most {MAX_EXEMPT_NAMESPACES} namespaces."]}
        )
    return list(dict.fromkeys(namespaces))


def _is_team_name(name: str) -> bool:
    """Whether ``name`` could name a team: only those are looked up (a NUL would make the
    database refuse the query)."""
    try:
        team_name_syntax(name)
    except ValidationError:
        return False
    return True


def policy_checked(document: object) -> Policy:
    """``document`` as a ``Policy`` (a ``PUT``, a YAML file, a console draft, a version to
    revert to), or a ``ValidationError`` naming each field that is wrong
    (``rules[1].require.teams[0].team``), unknown teams included."""
    try:
        policy = rules.policy_from_document(
            document, trust_on_first_use=settings.GATEHOUSE_TRUST_ON_FIRST_USE
        )
    except rules.DocumentError as error:
        raise ValidationError(error.errors) from error
    names = {name for name in policy.team_names() if _is_team_name(name)}
    unknown = policy.team_names() - set(
        Team.objects.filter(name__in=names).values_list("name", flat=True)
    )
    if unknown:
        errors: dict[str, list[str]] = {}
        for path, rule in [("default", policy.default)] + [
            (f"rules[{index}]", rule) for index, rule in enumerate(policy.rules)
        ]:
            for position, quota in enumerate(rule.requirement.teams):
                shown = references.shown(quota.team)  # not a team name: quoted, escaped
                if quota.team in unknown:
                    errors[f"{path}.require.teams[{position}].team"] = [
                        f"Unknown team: {quota.team if quota.team in names else shown}."
                    ]
        raise ValidationError(errors)
    return policy


@transaction.atomic
def policy_replace(
    *, actor: User | None, policy: Policy, expected_version: int | None = None, cause: str = ""
) -> tuple[ContentTrustPolicy, list[str]]:
    """Make ``policy`` the policy; returns the row and the dotted fields that changed.

    With ``expected_version`` (``If-Match``), a policy changed since is a ``StaleVersion``.
    Every change is kept as a ``PolicyVersion`` and audited with a field-by-field diff
    (``rules.readable``); saving what is already there changes nothing and records
    nothing. ``cause`` says how it came (``revert to version 3``, ``policy apply``).
    ``actor`` None is Gatehouse itself (``policy apply`` without ``--actor``).
    """
    row = ContentTrustPolicy.objects.select_for_update().filter(pk=policy_get().pk).get()
    if expected_version is not None and expected_version != row.version:
        raise StaleVersion(expected_version, row.version)
    before = policy_of(row)
    old, new = rules.readable(before), rules.readable(policy)
    changed = [change.field for change in audit_changes(old, new)]
    if not changed:
        return row, []
    document = rules.policy_document(policy)
    row.enabled = policy.enabled
    row.document = {"default": document["default"], "rules": document["rules"]}
    row.version += 1
    row.updated_by, row.updated_at = actor, timezone.now()
    row.save()
    PolicyVersion.objects.create(number=row.version, policy=document, changed=changed, actor=actor)
    evaluation_inputs_changed()
    audit_record(
        action="policy.updated",
        actor=actor,
        target_type="policy",
        target_id="content-trust",
        before=old,
        after={**new, "version": row.version, **({"cause": cause} if cause else {})},
    )
    logger.info("content trust policy v%d by %s: %s", row.version, actor, ", ".join(changed))
    return row, changed


def policy_apply(
    *, actor: User | None, document: object, expected_version: int | None = None, cause: str = ""
) -> tuple[ContentTrustPolicy, list[str]]:
    """``policy_replace`` with a document (the API's, a YAML file's), checked first."""
    return policy_replace(
        actor=actor,
        policy=policy_checked(document),
        expected_version=expected_version,
        cause=cause,
    )


def policy_revert(
    *, actor: User | None, number: int, expected_version: int | None = None
) -> tuple[ContentTrustPolicy, list[str]]:
    """Make version ``number`` the policy again: itself a new version."""
    version = policy_version(number)
    if version is None:
        raise ValidationError({"version": [f"There is no version {number}."]})
    return policy_apply(
        actor=actor,
        document=version.policy,
        expected_version=expected_version,
        cause=f"revert to version {number}",
    )


def policy_update(
    *,
    actor: User,
    enabled: bool,
    mode: str,
    signing_team_names: list[str],
    allow_repos: list[str],
    exempt_namespaces: list[str] | None = None,
    expected_version: int | None = None,
) -> tuple[ContentTrustPolicy, list[str]]:
    """Change UCP's five settings (``rules.with_ucp_settings``): the default rule's mode and
    teams and the exemption rules; every other rule stays. ``exempt_namespaces`` is kept
    as it is when not given; ``expected_version`` as for ``policy_replace`` (the console's
    form carries it; UCP's API never had one). Returns the row and which of the five
    settings changed."""
    if mode not in rules.RULE_MODES:
        raise ValidationError({"mode": [f"Mode is one of {', '.join(rules.RULE_MODES)}."]})
    names = list(dict.fromkeys(signing_team_names))
    known = set(Team.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValidationError({"signing_teams": [f"Unknown team: {name}." for name in unknown]})
    with transaction.atomic():
        current = policy_of(ContentTrustPolicy.objects.select_for_update().get(pk=policy_get().pk))
        policy = rules.with_ucp_settings(
            current,
            enabled=enabled,
            mode=mode,
            signing_teams=names,
            allow_repos=_clean_allow_repos(allow_repos),
            exempt_namespaces=(
                _clean_exempt_namespaces(exempt_namespaces)
                if exempt_namespaces is not None
                else None
            ),
        )
        row, changed = policy_replace(actor=actor, policy=policy, expected_version=expected_version)
    before, after = rules.ucp_settings(current), rules.ucp_settings(policy)
    return row, [field for field in after if after[field] != before[field]] if changed else []


def image_evaluate(*, image: str, namespace: str | None = None) -> Evaluation:
    """Would ``image`` pass the content-trust policy in ``namespace``, and why?

    Without a namespace only the rules for every namespace apply (``policy.rules``).

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
    return image_evaluation(image=image, namespace=namespace)[0]


def image_evaluation(*, image: str, namespace: str | None = None) -> tuple[Evaluation, Identities]:
    """``image_evaluate``, and the identities it judged by, so that its explanation
    (``explanations.evaluation_explained``) need not check the generation again."""
    started = time.perf_counter()
    context = evaluation_context()
    try:
        evaluation, identities = _evaluated_under(
            image=image, policy=context.policy, identities=context.identities, namespace=namespace
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
                "namespace": namespace,
                "rule": evaluation.rule.rule.name if evaluation.rule else None,
                "mode": evaluation.mode,
                "reasons": list(evaluation.reasons),
            },
        )
    return evaluation, identities


def image_evaluate_under(
    *, image: str, policy: Policy, identities: Identities, namespace: str | None = None
) -> Evaluation:
    """``image_evaluate`` with the policy and identities the caller has read already, so
    admission reads them once per review, not once per image."""
    evaluation, _ = _evaluated_under(
        image=image, policy=policy, identities=identities, namespace=namespace
    )
    return evaluation


def _evaluated_under(
    *, image: str, policy: Policy, identities: Identities, namespace: str | None
) -> tuple[Evaluation, Identities]:
    """The evaluation, and the identities it used: read again when its trust data read
    found a replay, so the replay counts at once."""
    try:
        reference = parse_image_reference(image)
    except InvalidReference as error:
        raise ValidationError({"image": [str(error)]}) from error
    if not needs_trust_data(policy, reference.gun, namespace):
        return evaluate(reference, policy, None, identities, namespace=namespace), identities
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
    evaluation = evaluate(
        reference, policy, trust, identities, namespace=namespace, trust_error=trust_error
    )
    return evaluation, identities


# --- Kubernetes admission ----------------------------------------------------------------


def _verdicts(
    images: list[str], namespace: str, policy: Policy, identities: Identities
) -> tuple[dict[str, admission.Verdict], dict[str, Evaluation], bool]:
    """Evaluate each distinct image once (``nginx`` and ``nginx:latest`` are one image);
    also the evaluations by image, and whether Notary could not be reached. An unreachable
    Notary fails every image that would need it, without waiting on Notary again for each.

    A replay found while the review runs (reading one image's trust data, or by another
    thread) counts for every image after it: ``identities`` are read again before the
    next evaluation, or a copy first read for one image would pass for the next."""
    replays = replays_found()
    verdicts: dict[str, admission.Verdict] = {}
    evaluations: dict[str, Evaluation] = {}
    by_reference: dict[str, admission.Verdict] = {}
    evaluated: dict[str, Evaluation] = {}  # by reference, so each spelling gets it
    unavailable: str | None = None
    for image in images:
        try:
            reference = parse_image_reference(image)
        except InvalidReference as error:
            verdicts[image] = admission.verdict_of_error(
                image, str(error), policy.strictest_mode(namespace)
            )
            continue
        verdict = by_reference.get(reference.image)
        if verdict is None:
            mode = policy.rule_for(reference.gun, namespace).mode if policy.enabled else OFF
            if unavailable is not None and needs_trust_data(policy, reference.gun, namespace):
                verdict = admission.verdict_of_error(image, unavailable, mode)
            else:
                if replays_found() != replays:
                    replays, identities = replays_found(), evaluation_context().identities
                try:
                    evaluation = image_evaluate_under(
                        image=image, policy=policy, identities=identities, namespace=namespace
                    )
                    evaluated[reference.image] = evaluation
                    verdict = admission.verdict_of(image, evaluation)
                except ValidationError as error:
                    verdict = admission.verdict_of_error(image, " ".join(error.messages), mode)
                except NotaryUnavailable as error:
                    unavailable = f"Notary cannot be reached, so nothing is verified: {error}"
                    verdict = admission.verdict_of_error(image, unavailable, mode)
            by_reference[reference.image] = verdict
        if reference.image in evaluated:
            evaluations[image] = evaluated[reference.image]
        # Pinned as each is written, so short names stay short.
        pin = verdict.pin and admission.pinned_image(image, verdict.pin.rpartition("@")[2])
        verdicts[image] = dataclasses.replace(verdict, image=image, pin=pin)
    return verdicts, evaluations, unavailable is not None


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
    recorded: list[dict[str, Any]] = []
    if workload is None:
        decision = admission.allow(f"Gatehouse content trust: {review.operation} is not checked")
    elif workload.unrecognised is None and not workload.images:
        decision = admission.allow(
            f"Gatehouse content trust: a {review.kind or 'object'} without container images"
        )
    else:
        context = evaluation_context()
        policy = context.policy
        namespace_mode = policy.strictest_mode(review.namespace or None)
        if policy.enabled and namespace_mode == OFF:
            recorded = [
                recorded_image(image, None) for image in admission.distinct_images(workload.images)
            ]
            decision = admission.allow(
                f"Gatehouse content trust: namespace {review.namespace or '(none)'} is exempt "
                "(every rule that can apply there is off); no image was checked"
            )
        elif workload.unrecognised is not None:
            reason = "unrecognised"
            decision = admission.decide_unrecognised(
                mode=namespace_mode, reason=workload.unrecognised
            )
        else:
            images = admission.distinct_images(workload.images)
            verdicts, evaluations, notary_unavailable = _verdicts(
                images, review.namespace, policy, context.identities
            )
            recorded = [recorded_image(image, evaluations.get(image)) for image in images]
            reason = "notary_unavailable" if notary_unavailable else "evaluated"
            decision = admission.decide(uses=workload.images, verdicts=verdicts, mutate=mutate)
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
            images=recorded,
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


PREVIEW_DAYS = 7
MAX_PREVIEW_DAYS = 90


def policy_preview(*, draft: Policy, days: int = PREVIEW_DAYS) -> Preview:
    """What ``draft`` would change against the policy in force (``policy.preview``): the
    images admission reviewed in the last ``days`` and every signed tag of the managed
    repositories. Reads only; nothing is saved."""
    if not 1 <= days <= MAX_PREVIEW_DAYS:
        raise ValidationError({"days": [f"A preview looks back 1 to {MAX_PREVIEW_DAYS} days."]})
    context = evaluation_context()
    now = timezone.now()
    return preview(
        context.policy,
        draft,
        preview_subjects(since=now - dt.timedelta(days=days)),
        context.identities,
        now=now,
    )


def recorded_image(image: str, evaluation: Evaluation | None) -> dict[str, Any]:
    """What an admission decision keeps of one image for ``policy.preview``: what its trust
    data said whatever the rules, or that it was never read (``examined`` false)."""
    if evaluation is None or not evaluation.examined:
        return {"image": image, "examined": False}
    return {
        "image": image,
        "examined": True,
        "digest": evaluation.digest,
        "missing": evaluation.missing,
        "root_pinned": evaluation.root_pinned,
        "signatures": [[match.username, match.key_id] for match in evaluation.signatures],
    }


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
