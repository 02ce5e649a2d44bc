"""Reads of the content-trust policy, and of who owns the keys that signed an image."""

import datetime as dt
import json
from collections import Counter

from django.conf import settings
from django.db.models import QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from audit.models import AuditEntry
from audit.selectors import FieldChange, audit_changes, audit_entries
from policy.evaluation import Evaluation, InvalidReference, parse_image_reference
from policy.models import AdmissionDecision, ContentTrustPolicy, PolicyVersion, default_document
from policy.preview import ADMISSION, SIGNED_TAG, Subject
from policy.redaction import redact
from policy.rules import Policy, policy_from_document, readable, ucp_settings
from trust.selectors import repository_list, signed_tags_managed


def policy_get() -> ContentTrustPolicy:
    """The one policy row; it exists from the first read on, disabled."""
    policy, _ = ContentTrustPolicy.objects.select_related("updated_by").get_or_create(pk=1)
    return policy


def policy_of(row: ContentTrustPolicy) -> Policy:
    """The row as a ``Policy``: its switch and its document, checked when it was written."""
    return policy_stored({"enabled": row.enabled, **row.document})


def policy_stored(document: object) -> Policy:
    """A document Gatehouse wrote (the policy's, a version's), read again: never refused
    for a pattern an earlier grammar took (``policy_from_document``'s ``stored``)."""
    return policy_from_document(
        document, trust_on_first_use=settings.GATEHOUSE_TRUST_ON_FIRST_USE, stored=True
    )


def policy_current() -> Policy:
    return policy_of(policy_get())


def policy_settings(row: ContentTrustPolicy) -> dict:
    """UCP's five settings (``rules.ucp_settings``), as ``/api/v1/policy/content-trust/``
    and the console's quick form show them."""
    return ucp_settings(policy_of(row))


def policy_versions() -> QuerySet[PolicyVersion]:
    return PolicyVersion.objects.select_related("actor")


def policy_version(number: int) -> PolicyVersion | None:
    return policy_versions().filter(number=number).first()


def policy_version_diff(version: PolicyVersion) -> list[FieldChange]:
    """What ``version`` changed, field by field in words (``rules.readable``), against the
    version before it; version 1 against the policy every installation starts with."""
    previous = policy_version(version.number - 1)
    before = previous.policy if previous else {"enabled": False, **default_document()}
    return audit_changes(readable(policy_stored(before)), readable(policy_stored(version.policy)))


def preview_subjects(*, since: dt.datetime) -> list[Subject]:
    """What a policy preview judges (``policy.preview``): each distinct image admission
    reviewed since ``since`` in each namespace, with how often, and each tag signed in a
    managed repository. Decisions recorded before images were kept add nothing."""
    seen: Counter[tuple[str, str]] = Counter()
    for namespace, images in AdmissionDecision.objects.filter(created_at__gte=since).values_list(
        "namespace", "images"
    ):
        for image in images:
            seen[(namespace, json.dumps(image, sort_keys=True))] += 1
    subjects = []
    for (namespace, text), occurrences in seen.items():
        record = json.loads(text)
        try:
            reference = parse_image_reference(record["image"])
        except InvalidReference:
            continue  # never evaluated: no rule decided it
        subjects.append(
            Subject(
                image=record["image"],
                reference=reference,
                namespace=namespace or None,
                source=ADMISSION,
                examined=record.get("examined", False),
                digest=record.get("digest"),
                missing=record.get("missing"),
                root_pinned=record.get("root_pinned", True),
                signatures=tuple((name, key) for name, key in record.get("signatures", ())),
                occurrences=occurrences,
            )
        )
    tags: dict[tuple[str, str, str], None] = {}
    signers: dict[tuple[str, str], dict[str, None]] = {}
    for gun, tag, digest, username in signed_tags_managed():
        tags[(gun, tag, digest)] = None
        signers.setdefault((gun, digest), {})[username] = None
    for gun, tag, digest in tags:
        try:
            reference = parse_image_reference(f"{gun}:{tag}@{digest}")
        except InvalidReference:
            continue  # not a tag Docker can name
        subjects.append(
            Subject(
                image=f"{gun}:{tag}",
                reference=reference,
                namespace=None,
                source=SIGNED_TAG,
                examined=True,
                digest=digest,
                # Whoever signed the digest, under any tag, as a digest reference counts them.
                signatures=tuple((username, "") for username in signers[(gun, digest)]),
            )
        )
    return subjects


def admission_decisions_latest(limit: int = 20) -> QuerySet[AdmissionDecision]:
    """The latest admission decisions, newest first."""
    return admission_decisions()[:limit]


def admission_decisions() -> QuerySet[AdmissionDecision]:
    """The admission decision log, newest first. Admins' alone (the API and the console
    check): it names namespaces, workloads and why they failed."""
    return AdmissionDecision.objects.order_by("-created_at", "-id")


# The audit actions of a denial: admission's, and a check's (``services.image_evaluate``).
DENIAL_ACTIONS = ("admission.denied", "policy.evaluation_denied")


def denials(*, viewer: User) -> QuerySet[AuditEntry]:
    """Every denial, admission's and checks', newest first, from the audit log: the
    admins', like the log."""
    return audit_entries(viewer=viewer).filter(action__in=DENIAL_ACTIONS)


def denials_since(*, viewer: User, since: dt.datetime) -> int:
    """How many denials since ``since``, counting the repeats folded into an entry."""
    total = (
        denials(viewer=viewer)
        .filter(created_at__gte=since)
        .aggregate(total=Sum(Coalesce("fold__occurrences", Value(1))))["total"]
    )
    return total or 0


def images_checked(*, viewer: User) -> bool:
    """Whether an image check is on record: an admission review, or a denied check (a
    check that passes leaves no record of its own)."""
    return (
        AdmissionDecision.objects.exists()
        or audit_entries(viewer=viewer).filter(action="policy.evaluation_denied").exists()
    )


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
