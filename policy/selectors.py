"""Reads of the content-trust policy, and of who owns the keys that signed an image."""

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import cast

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from audit.models import AuditEntry
from audit.selectors import FieldChange, audit_changes, audit_entries
from gatehouse.rows import RowReader
from policy.evaluation import Evaluation, InvalidReference, parse_image_reference
from policy.models import AdmissionDecision, ContentTrustPolicy, PolicyVersion, default_document
from policy.preview import ADMISSION, SIGNED_TAG, Subject
from policy.redaction import redact
from policy.rules import Policy, policy_from_document, readable, ucp_settings
from trust.models import Repository
from trust.selectors import repository_visible, signed_tags_managed

POLICY_PK = 1


def policy_get() -> ContentTrustPolicy:
    """The one policy row, with who changed it last (their username; the rest of the user
    is deferred); it exists from the first read on, disabled.

    Every read of the policy comes through here, so it is one SELECT written out: built by
    the ORM it took five times as long. Its row becomes models as the ORM's would, each
    column through the backend's converters.
    """
    read = _policy_read()
    with connection.cursor() as cursor:
        cursor.execute(read.sql, [POLICY_PK])
        row = cursor.fetchone()
    if row is None:
        policy, _ = ContentTrustPolicy.objects.select_related("updated_by").get_or_create(
            pk=POLICY_PK
        )
        return policy
    return read.policy_from(row)


@dataclass(frozen=True)
class _PolicyRead:
    sql: str
    reader: RowReader

    def policy_from(self, row: tuple) -> ContentTrustPolicy:
        policy, updated_by = self.reader.models(row)
        policy = cast(ContentTrustPolicy, policy)
        policy.updated_by = cast(User | None, updated_by)
        return policy


@cache
def _policy_read() -> _PolicyRead:
    """The statement and its row's reader, made once per process. Of the user who changed
    the policy last, only what its readers show."""
    q = connection.ops.quote_name
    reader = RowReader.of((ContentTrustPolicy, "p", None), (User, "u", ("id", "username")))
    # Only our own table and column names are formatted in; every value is bound.
    sql = (
        f"SELECT {reader.columns} FROM {q(ContentTrustPolicy._meta.db_table)} p "  # noqa: S608
        f"LEFT JOIN {q(User._meta.db_table)} u ON u.{q('id')} = p.{q('updated_by_id')} "
        f"WHERE p.{q('id')} = %s"
    )
    return _PolicyRead(sql, reader)


def policy_of(row: ContentTrustPolicy) -> Policy:
    """The row as a ``Policy``: its switch and its document, checked when it was written."""
    return policy_stored({"enabled": row.enabled, **row.document})


def policy_stored(document: object) -> Policy:
    """A document Gatehouse wrote (the policy's, a version's), read again: never refused
    for a pattern an earlier grammar took (``policy_from_document``'s ``stored``).

    Reading a document takes ten times as long as writing it out as JSON, and every read
    of the policy reads one, so each is read once per process, found again by its JSON (a
    ``Policy`` never changes)."""
    return _policy_from_json(json.dumps(document), settings.GATEHOUSE_TRUST_ON_FIRST_USE)


@lru_cache(maxsize=64)
def _policy_from_json(text: str, trust_on_first_use: bool) -> Policy:
    return policy_from_document(
        json.loads(text), trust_on_first_use=trust_on_first_use, stored=True
    )


def policy_current() -> Policy:
    return policy_of(policy_get())


def policy_settings(row: ContentTrustPolicy) -> dict:
    """UCP's five settings (``rules.ucp_settings``), as ``/api/v1/policy/content-trust/``
    and the console's quick form show them."""
    return ucp_settings(policy_of(row))


# The annotation of ``policy_versions``: the policy of the version before (None for the first).
PREVIOUS_POLICY = "previous_policy"


def policy_versions() -> QuerySet[PolicyVersion]:
    """Newest first, each with who made it and, in the same query, the policy of the
    version before it, which ``policy_version_diff`` compares it with."""
    previous = PolicyVersion.objects.filter(number=OuterRef("number") - 1).values("policy")
    return PolicyVersion.objects.select_related("actor").annotate(
        **{PREVIOUS_POLICY: Subquery(previous)}
    )


def policy_version_list() -> QuerySet[PolicyVersion]:
    """The versions as their list shows them: who made each (the username alone), when,
    and which fields changed; not the policies, the largest columns by far."""
    return PolicyVersion.objects.select_related("actor").only(
        "number", "created_at", "changed", "actor__username"
    )


def policy_version(number: int) -> PolicyVersion | None:
    return policy_versions().filter(number=number).first()


def policy_version_diff(version: PolicyVersion) -> list[FieldChange]:
    """What ``version`` (of ``policy_versions``) changed, field by field in words
    (``rules.readable``), against the version before it; version 1 against the policy
    every installation starts with."""
    previous = getattr(version, PREVIOUS_POLICY)
    before = previous if previous is not None else {"enabled": False, **default_document()}
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
    check): it names namespaces, workloads and why they failed. Without the images each
    decision kept for the preview (``preview_subjects`` reads them): no log shows them."""
    return AdmissionDecision.objects.order_by("-created_at", "-id").defer("images")


REVIEW_ADMISSION = ("policy", "review_admission")  # app label, codename


def may_review_admission(user: User) -> bool:
    """``user.has_perm("policy.review_admission")`` as Django's ``ModelBackend`` answers
    it (inactive: no; admins, Gatehouse's superusers: yes; else a permission of the user's
    own or of one of their groups), in one statement instead of Django's two: every
    admission review asks. Nothing is kept between calls, so a permission taken away
    refuses the very next review."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    with connection.cursor() as cursor:
        cursor.execute(_review_permission_sql(), [*REVIEW_ADMISSION, user.pk, user.pk])
        row = cursor.fetchone()
    return bool(row[0])


@cache
def _review_permission_sql() -> str:
    """The statement, made once per process from the tables' names."""
    q = connection.ops.quote_name
    own = User.user_permissions.through._meta.db_table
    member = User.groups.through._meta.db_table
    granted = Group.permissions.through._meta.db_table
    # Only our own table and column names are formatted in; every value is bound.
    return (
        "SELECT EXISTS (SELECT 1 "  # noqa: S608
        f"FROM {q(Permission._meta.db_table)} p "
        f"JOIN {q(ContentType._meta.db_table)} c ON c.id = p.content_type_id "
        "WHERE c.app_label = %s AND p.codename = %s AND ("
        f"EXISTS (SELECT 1 FROM {q(own)} o WHERE o.permission_id = p.id AND o.user_id = %s) "
        f"OR EXISTS (SELECT 1 FROM {q(granted)} g JOIN {q(member)} m ON m.group_id = g.group_id "
        "WHERE g.permission_id = p.id AND m.user_id = %s)))"
    )


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
    GUN Gatehouse does not manage is nobody's but the admins'. Every evaluation by a
    non-admin asks, so it is one ``EXISTS``."""
    return viewer.is_admin or repository_visible(viewer=viewer, gun=gun)


def repository_signer_teams(gun: str) -> tuple[str, ...] | None:
    """The names of the signer teams of the repository Gatehouse manages under ``gun``,
    sorted; None if it manages none. One query: the repository's teams, joined."""
    names = list(Repository.objects.filter(gun=gun).values_list("signer_teams__name", flat=True))
    if not names:
        return None
    return tuple(sorted(name for name in names if name is not None))


def evaluation_for(*, viewer: User, evaluation: Evaluation) -> tuple[Evaluation, bool]:
    """The evaluation as ``viewer`` may read it, and whether names were left out
    (``policy.redaction``): the decision is everyone's, the signers are not."""
    if explanation_visible(viewer=viewer, gun=evaluation.gun):
        return evaluation, False
    return redact(evaluation), True
