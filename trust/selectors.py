"""Reads for repositories and jobs, the desired state of a repository's delegations, and
the token keys notary-server must trust."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography import x509
from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import Membership, Team, User
from bundles.models import PublicKey, SigningRole
from trust.models import (
    CURRENT_ROOT,
    CustodyKey,
    Job,
    Repository,
    RoleFileSighting,
    RootKeyExport,
    SignedTag,
)
from trust.notary.keys import TufKey, certificate_tuf_key, tuf_key_canonical_id
from trust.notary.metadata import RELEASES


def repository_list(*, viewer: User) -> QuerySet[Repository]:
    """Admins see every repository; others those their teams sign."""
    return _visible(
        Repository.objects.prefetch_related(
            Prefetch("signer_teams", queryset=Team.objects.only("name"))
        ),
        viewer,
    )


def repositories_shown(*, viewer: User) -> QuerySet[Repository]:
    """``repository_list`` for showing with ``repository_details``, which reads the signer
    teams of them all at once, and without ``notary_state``, the largest column by far, of
    which ``repository_details`` reads the little it needs."""
    return _visible(Repository.objects.defer("notary_state"), viewer)


def repository_visible(*, viewer: User, gun: str) -> bool:
    """Whether ``viewer`` may see the repository Gatehouse manages under ``gun``, by
    ``repository_list``'s rule, in one ``EXISTS``."""
    return _visible(Repository.objects.filter(gun=gun), viewer).exists()


def _visible(repositories: QuerySet[Repository], viewer: User) -> QuerySet[Repository]:
    if viewer.is_admin:
        return repositories
    return repositories.filter(signer_teams__memberships__user=viewer).distinct()


def job_list(*, viewer: User) -> QuerySet[Job]:
    jobs = Job.objects.select_related("caused_by")
    if viewer.is_admin:
        return jobs
    return jobs.filter(repository__in=repository_list(viewer=viewer))


def desired_delegations(repository: Repository) -> dict[str, list[PublicKey]]:
    """What Notary should hold: for each active member of a signer team who has signing
    keys (signing, not revoked, not expired), their own role ``targets/<name>`` with those
    keys alone, and ``targets/releases`` with all of them. No role is shared, so no
    signature vouches for another person's entries (docs/threat-model.md). Read afresh at
    every call.

    Every job of a fan-out runs this, so it is one query, written out: built by the ORM, a
    join this wide cost ≈ 1.4 ms of CPU per call, as SQL ≈ 0.4 ms (docs/performance.md,
    "Provisioning").
    """
    sql = _DESIRED_KEYS_SQL.format(
        key=PublicKey._meta.db_table,
        user=User._meta.db_table,
        role=SigningRole._meta.db_table,
        membership=Membership._meta.db_table,
        signer_teams=Repository.signer_teams.through._meta.db_table,
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM passes it
    keys = PublicKey.objects.raw(sql, [now, repository.pk])
    desired: dict[str, list[PublicKey]] = {}
    releases: dict[str, PublicKey] = {}
    for key in keys:
        # role_name is a column of the query (r.name AS role_name), not a field of the model.
        desired.setdefault(f"targets/{key.role_name}", []).append(key)  # type: ignore[attr-defined]
        releases[key.id] = key
    if releases:
        desired[RELEASES] = [releases[k] for k in sorted(releases)]
    return desired


# Only our own table names are formatted in; the values are bound parameters.
_DESIRED_KEYS_SQL = (
    "SELECT k.*, r.name AS role_name FROM {key} k "
    "JOIN {user} u ON u.id = k.user_id "
    "JOIN {role} r ON r.user_id = u.id "
    "WHERE k.is_signing_key AND k.revoked_at IS NULL AND k.expires_at > %s AND u.is_active "
    "AND EXISTS (SELECT 1 FROM {membership} m JOIN {signer_teams} s ON s.team_id = m.team_id "
    "WHERE m.user_id = u.id AND s.repository_id = %s) "
    "ORDER BY r.name, k.id"
)


def tuf_keys(keys: list[PublicKey]) -> list[TufKey]:
    """Delegation key objects: each certificate as an x509 key (docs/notary-protocol.md,
    "Key IDs")."""
    return [_certificate_tuf_key(key.certificate) for key in keys]


@lru_cache(maxsize=2048)
def _certificate_tuf_key(pem: str) -> TufKey:
    """Parsed once per process: every job of a fan-out delegates to the same certificates
    (≈ 0.1 ms each to parse and re-encode). A function of the PEM text alone, so it cannot go
    stale: which keys count is still read afresh by every job."""
    return certificate_tuf_key(x509.load_pem_x509_certificate(pem.encode("ascii")))


def repositories_of_teams(team_ids: list[int]) -> QuerySet[Repository]:
    return Repository.objects.filter(signer_teams__in=team_ids).distinct()


def repositories_of_user(user: User) -> QuerySet[Repository]:
    return Repository.objects.filter(signer_teams__memberships__user=user).distinct()


def repository_counts_by_state() -> dict[str, int]:
    """How many repositories are in each state, every state named (0 when none): one query."""
    counts = dict(Repository.objects.order_by().values_list("state").annotate(count=Count("pk")))
    return {state: counts.get(state, 0) for state in Repository.State.values}


def repositories_drifted() -> QuerySet[Repository]:
    """The repositories whose last drift check found Notary holding other delegations than
    it should (``trust.services.drift``); the sync it asked for clears it at the next check."""
    return Repository.objects.filter(drift__isnull=False).order_by("gun")


def jobs_failed_count() -> int:
    return Job.objects.filter(status=Job.Status.FAILED).count()


def signed_tags_seen() -> bool:
    """Whether Gatehouse has seen a signer sign a tag in their own role (``SignedTag``, from
    a check, a repository's page or a drift check), leaving out replayed files."""
    replayed = RoleFileSighting.objects.filter(fingerprint=OuterRef("fingerprint"), replayed=True)
    return SignedTag.objects.filter(~Exists(replayed)).exists()


def signed_tags_managed() -> list[tuple[str, str, str, str]]:
    """(GUN, tag, digest, signer's username) of every tag a signer signed in their own role
    of a repository Gatehouse manages, leaving out replayed files: what a policy preview
    judges besides admission's images."""
    replayed = RoleFileSighting.objects.filter(fingerprint=OuterRef("fingerprint"), replayed=True)
    return list(
        SignedTag.objects.filter(~Exists(replayed), gun__in=Repository.objects.values("gun"))
        .order_by("gun", "tag", "digest")
        .values_list("gun", "tag", "digest", "signer__username")
    )


@dataclass(frozen=True)
class RepositoryDetails:
    """What showing repositories takes beyond their rows, read once for all of them."""

    signer_teams: dict[int, list[str]]  # repository id -> the names of its signer teams
    delegations: dict[int, list[dict]]  # repository id -> published delegations, described
    latest_jobs: dict[int, Job]  # repository id -> its newest job
    gatehouse_root_key_id: str | None

    def root_key_id(self, repository: Repository) -> str | None:
        """Our one root key for the repositories Gatehouse made; the pinned one if adopted."""
        if repository.adopted:
            return (repository.pinned_root_key_ids or [None])[0]
        return self.gatehouse_root_key_id


def repository_details(repositories: Sequence[Repository]) -> RepositoryDetails:
    """Four queries for a page of any size: the signer teams, the custodian and root key
    IDs, the keys named by the published delegations (with owners) and the newest jobs; a
    fifth only for keys nobody here owns, whose IDs come from the published targets
    (``notary_state``, the largest column, which a list may leave deferred).

    Only the columns shown are read: not a key's certificate, nor a custody key's sealed
    private key, nor anything of a key's owner but the username.
    """
    shown = [r.pk for r in repositories]
    custodian_key_id, gatehouse_root_key_id = _custodian_and_root_key_ids()
    key_ids = {k for r in repositories for k in _key_ids_of(r)}
    named = _named_keys(key_ids, custodian_key_id)
    unknown = key_ids - named.keys()
    published_keys = _published_keys(
        [r for r in repositories if unknown and not unknown.isdisjoint(_key_ids_of(r))]
    )
    return RepositoryDetails(
        signer_teams=_signer_teams(shown),
        delegations={r.pk: _described(r, named, published_keys.get(r.pk)) for r in repositories},
        latest_jobs=_latest_jobs(shown),
        gatehouse_root_key_id=gatehouse_root_key_id,
    )


def _key_ids_of(repository: Repository) -> set[str]:
    return {k for entry in repository.delegations for k in entry["key_ids"]}


def _custodian_and_root_key_ids() -> tuple[str | None, str | None]:
    """The custodian key's ID and the current root key's, in one query (there is at most
    one of each: ``custody_key_one_root_one_custodian``)."""
    ids = dict(
        CustodyKey.objects.filter(Q(kind=CustodyKey.Kind.CUSTODIAN) | CURRENT_ROOT).values_list(
            "kind", "key_id"
        )
    )
    return ids.get(CustodyKey.Kind.CUSTODIAN), ids.get(CustodyKey.Kind.ROOT)


_CUSTODIAN_LABEL = "Gatehouse custodian (keeps remaining signers able to sign)"


def _named_keys(key_ids: set[str], custodian_key_id: str | None) -> dict[str, dict]:
    """Each of these keys that Gatehouse knows, as a delegation shows it: people's keys by
    owner and label, and the custodian. One dict per key for the whole page, shared by
    every repository that delegates to it (so not to be changed)."""
    named: dict[str, dict[str, str | None]] = {
        key.tuf_key_id: {"id": key.id, "username": key.user__username, "label": key.label}
        for key in PublicKey.objects.filter(tuf_key_id__in=key_ids).values_list(
            "tuf_key_id", "id", "user__username", "label", named=True
        )
    }
    if custodian_key_id in key_ids:
        named.setdefault(
            custodian_key_id, {"id": custodian_key_id, "username": None, "label": _CUSTODIAN_LABEL}
        )
    return named


def _published_keys(repositories: Sequence[Repository]) -> dict[int, Any]:
    """The keys of each repository's published delegations (``targets.delegations.keys`` of
    ``notary_state``): from the rows when they hold the column, else in one query that reads
    only that part of it."""
    published: dict[int, Any] = {}
    deferred = []
    for repository in repositories:
        if "notary_state" in repository.get_deferred_fields():
            deferred.append(repository.pk)
        else:
            state = repository.notary_state or {}
            published[repository.pk] = ((state.get("targets") or {}).get("delegations") or {}).get(
                "keys"
            )
    if deferred:
        published.update(
            Repository.objects.filter(pk__in=deferred).values_list(
                "pk", "notary_state__targets__delegations__keys"
            )
        )
    return published


def _signer_teams(shown: list[int]) -> dict[int, list[str]]:
    """Each repository's signer teams by name, in one query and no more: a prefetch also
    builds a queryset for each repository, which cost more than the rows."""
    teams: dict[int, list[str]] = {pk: [] for pk in shown}
    for pk, name in (
        Repository.signer_teams.through.objects.filter(repository__in=shown)
        .order_by("team__name")
        .values_list("repository", "team__name")
    ):
        teams[pk].append(name)
    return teams


def _latest_jobs(shown: list[int]) -> dict[int, Job]:
    """Each repository's newest job, if it has one, in one query."""
    newest = (
        Job.objects.filter(repository=OuterRef("pk")).order_by("-created_at", "-id").values("pk")
    )
    latest = Repository.objects.filter(pk__in=shown).annotate(latest_job=Subquery(newest[:1]))
    jobs = Job.objects.select_related("caused_by").filter(pk__in=latest.values("latest_job"))
    # Each the newest job of one of the repositories, so none is without one.
    return {job.repository_id: job for job in jobs if job.repository_id is not None}


def _described(repository: Repository, named: dict[str, dict], published_keys: Any) -> list[dict]:
    """Published delegations, each key by the ID ``notary key list`` shows, with its owner
    and label when known."""
    return [
        {
            "role": entry["role"],
            "keys": [
                named.get(key_id)
                or {"id": _shown_id(key_id, published_keys or {}), "username": None, "label": ""}
                for key_id in entry["key_ids"]
            ],
        }
        for entry in repository.delegations
    ]


def _shown_id(key_id: str, published_keys: dict) -> str:
    """A key nobody here owns, by its canonical ID when the published targets holds it."""
    try:
        document = published_keys[key_id]
        return tuf_key_canonical_id(
            TufKey(str(document["keytype"]), str(document["keyval"]["public"]))
        )
    except (KeyError, TypeError):
        return key_id


def root_key_id() -> str | None:
    return CustodyKey.objects.filter(CURRENT_ROOT).values_list("key_id", flat=True).first()


def root_key_exported() -> bool:
    return RootKeyExport.objects.exists()


def root_key_status() -> tuple[str | None, bool]:
    """The current root key's ID (``None`` until it is made) and whether it was ever
    exported: one query once the key exists."""
    row = (
        CustodyKey.objects.filter(CURRENT_ROOT)
        .annotate(exported=Exists(RootKeyExport.objects.all()))
        .values_list("key_id", "exported")
        .first()
    )
    if row is None:
        return None, root_key_exported()
    return row[0], row[1]


def root_key_awaits_export() -> bool:
    """The root key exists and has never been exported, in one query."""
    return (
        CustodyKey.objects.filter(CURRENT_ROOT)
        .filter(~Exists(RootKeyExport.objects.all()))
        .exists()
    )


def token_keys() -> QuerySet[CustodyKey]:
    """Every token key there has been, oldest first."""
    return CustodyKey.objects.filter(kind=CustodyKey.Kind.TOKEN).order_by("created_at", "id")


def token_keys_trusted() -> QuerySet[CustodyKey]:
    """The keys whose certificates notary-server's ``rootcertbundle`` must hold: the current
    one, a staged one (so it may start signing) and those still retiring (so the tokens they
    signed stay valid until they expire)."""
    trusted = [CustodyKey.State.STAGED, CustodyKey.State.CURRENT, CustodyKey.State.RETIRING]
    return token_keys().filter(state__in=trusted)


# notary-server accepts a token up to 60 s past its ``exp`` (docs/notary-protocol.md,
# "Token authentication"), and a token minted on another machine just before the switch
# committed may carry a later clock.
TOKEN_EXPIRY_MARGIN = dt.timedelta(seconds=120)


def token_key_tokens_expire_at(key: CustodyKey) -> dt.datetime | None:
    """When notary-server stops accepting the last token a superseded key signed; ``None``
    while it still signs."""
    if key.superseded_at is None:
        return None
    lifetime = dt.timedelta(seconds=settings.GATEHOUSE_NOTARY_TOKEN_SECONDS)
    return key.superseded_at + lifetime + TOKEN_EXPIRY_MARGIN


def repositories_matching(repositories: QuerySet[Repository], term: str) -> QuerySet[Repository]:
    return repositories.filter(Q(gun__icontains=term)) if term else repositories


def job_detail(*, viewer: User, pk: int) -> Job | None:
    """A job the viewer may see, with its history and repository; ``None`` for any other."""
    return (
        job_list(viewer=viewer)
        .select_related("repository")
        .prefetch_related("events")
        .filter(pk=pk)
        .first()
    )


@dataclass(frozen=True)
class JobTimings:
    """How long a job waited for a worker, ran (retries included) and took in all."""

    waited: dt.timedelta | None
    ran: dt.timedelta | None
    total: dt.timedelta | None


def job_timings(job: Job) -> JobTimings:
    def between(start: dt.datetime | None, end: dt.datetime | None) -> dt.timedelta | None:
        return end - start if start and end else None

    return JobTimings(
        waited=between(job.created_at, job.started_at),
        ran=between(job.started_at, job.finished_at),
        total=between(job.created_at, job.finished_at),
    )


BATCH_FAILURES_SHOWN = 20


@dataclass(frozen=True)
class BatchProgress:
    """How far the initialisation of a batch of repositories (a bulk creation) has come,
    counting those of the batch the viewer may still see."""

    ready: int
    failed: int
    pending: int
    failures: list[tuple[Repository, Job | None]]  # the first failed ones, with newest job

    @property
    def total(self) -> int:
        return self.ready + self.failed + self.pending

    @property
    def done(self) -> bool:
        return self.pending == 0


def repository_batch_progress(*, viewer: User, ids: Sequence[int]) -> BatchProgress:
    """Three queries for a batch of any size: the count by state, the first failed
    repositories, and their newest jobs (whose error says why)."""
    batch = Repository.objects.filter(
        pk__in=repository_list(viewer=viewer).filter(pk__in=ids).values("pk")
    )
    counts = dict(
        batch.order_by().values("state").annotate(count=Count("pk")).values_list("state", "count")
    )
    newest = (
        Job.objects.filter(repository=OuterRef("pk")).order_by("-created_at", "-id").values("pk")
    )
    failed = batch.filter(state=Repository.State.FAILED).order_by("gun")[:BATCH_FAILURES_SHOWN]
    latest = failed.annotate(latest_job=Subquery(newest[:1])).values("latest_job")
    jobs = {job.repository_id: job for job in Job.objects.filter(pk__in=Subquery(latest))}
    return BatchProgress(
        ready=counts.get(Repository.State.READY, 0),
        failed=counts.get(Repository.State.FAILED, 0),
        pending=counts.get(Repository.State.PENDING, 0),
        failures=[(repository, jobs.get(repository.pk)) for repository in failed],
    )


@dataclass(frozen=True)
class KeyMembership:
    """Where a signing key stands in one repository its owner signs."""

    repository: Repository
    in_notary: bool  # the published delegations hold it in its owner's role
    job: Job | None  # the repository's newest job, which may yet put it there


def key_memberships(key: PublicKey) -> list[KeyMembership]:
    """The repositories a signing key joins (those whose signer teams have its owner), each
    with whether Notary holds it yet; the same few queries for any number of them."""
    role: SigningRole | None = getattr(key.user, "signing_role", None)
    newest = (
        Job.objects.filter(repository=OuterRef("pk")).order_by("-created_at", "-id").values("pk")
    )
    repositories = list(
        repositories_of_user(key.user).annotate(latest_job=Subquery(newest[:1])).order_by("gun")
    )
    jobs = Job.objects.in_bulk([r.latest_job for r in repositories if r.latest_job])
    # Read after the jobs: a job commits its repository's row with its own, so a sync read
    # as finished is never shown beside the delegations from before it (the card would
    # then say "Pending" with nothing left to follow).
    delegations = dict(
        Repository.objects.filter(pk__in=[r.pk for r in repositories]).values_list(
            "pk", "delegations"
        )
    )
    return [
        KeyMembership(
            repository=repository,
            in_notary=role is not None
            and any(
                entry.get("role") == role.role and key.tuf_key_id in entry.get("key_ids", ())
                for entry in delegations.get(repository.pk, [])
            ),
            job=jobs.get(repository.latest_job),
        )
        for repository in repositories
    ]
