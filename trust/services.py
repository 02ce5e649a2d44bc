"""Writes for repositories and their jobs: the work that keeps Notary in step with identity.

Views and the API call the ``repository_*`` functions, which change the database and queue
a job after the transaction commits. Identity services call ``identity_changed`` so that
every change of people, teams or keys reaches Notary. The Celery task calls ``job_run``.
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from celery import current_app
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from accounts.models import Team, User
from audit.services import audit_record
from policy.inputs import evaluation_inputs_changed
from policy.selectors import policy_get
from trust import custody, selectors
from trust.models import CustodyKey, Job, Repository, RootKeyExport
from trust.notary.client import NotaryClient, RepositoryState
from trust.notary.errors import (
    InvalidMetadata,
    NotaryError,
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
    RepositoryExists,
)
from trust.notary.keys import (
    NotAPrivateKey,
    WrongPassphrase,
    load_private_key_pem,
    load_public_key,
    plain_signing_key,
    tuf_key_canonical_id,
)
from trust.notary.transport import TokenVerdict
from trust.notary_access import notary_client, notary_transport
from trust.replays import (
    history_seen,
    repository_forgotten,
    role_files_seen,
    signers_histories_seen,
)
from trust.trust_data import verified_repository

logger = logging.getLogger(__name__)

JOB_TASK = "trust.run_job"
LOCK_RETRY_SECONDS = 2.0
ROOT_EXPORT_MIN_PASSPHRASE = 12
ROOT_EXPORT_MAX_PASSPHRASE_BYTES = 1023  # OpenSSL's PKCS#8 encryption takes no more


# --- Enqueueing ---------------------------------------------------------------------------


def _send(job_ids: list[int], *, countdown: float = 0) -> None:
    """Hand job ids to the broker. A broker that cannot be reached loses nothing: the jobs
    are in the database, and the beat's ``jobs_requeue_stale`` sends them again later, so
    the request that made them still succeeds."""
    try:
        for job_id in job_ids:
            current_app.send_task(JOB_TASK, args=[job_id], countdown=countdown or None)
    except (KombuOperationalError, OSError) as error:
        logger.warning(
            "broker unreachable (%s); %d job(s) will be sent by the stale-job sweep",
            type(error).__name__,
            len(job_ids),
        )


def _enqueue(job: Job, *, countdown: float = 0) -> None:
    """Send the job's id to a worker once the transaction that made it has committed."""
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
    job_id = job.pk
    transaction.on_commit(lambda: _send([job_id], countdown=countdown))


def _new_job(
    *, kind: str, repository: Repository, actor: User | None, cause: str, countdown: float = 0
) -> Job:
    job = Job.objects.create(
        kind=kind, repository=repository, gun=repository.gun, caused_by=actor, cause=cause[:255]
    )
    _enqueue(job, countdown=countdown)
    return job


def repository_sync_request(
    *, repository: Repository, actor: User | None, cause: str, delay: float | None = None
) -> Job:
    """Ask for a sync; a sync already queued for the repository absorbs the request.

    The queued job reads the desired state when it runs, so it covers this change too; the
    short delay lets a burst of changes end in one update.
    """
    delay = settings.GATEHOUSE_SYNC_DELAY_SECONDS if delay is None else delay
    queued = Job.objects.filter(
        repository=repository, kind=Job.Kind.SYNC, status=Job.Status.QUEUED
    ).first()
    if queued is not None:
        return queued
    try:
        with transaction.atomic():
            return _new_job(
                kind=Job.Kind.SYNC, repository=repository, actor=actor, cause=cause, countdown=delay
            )
    except IntegrityError:  # another request queued one at the same moment
        return Job.objects.get(repository=repository, kind=Job.Kind.SYNC, status=Job.Status.QUEUED)


def repositories_sync_request(
    *, repositories: Iterable[Repository], actor: User | None, cause: str
) -> int:
    """``repository_sync_request`` for many repositories in a few queries: a fan-out to
    hundreds of repositories is one membership change away. Returns how many were queued."""
    ids = {repository.pk for repository in repositories}
    if not ids:
        return 0
    absorbed = set(
        Job.objects.filter(
            repository_id__in=ids, kind=Job.Kind.SYNC, status=Job.Status.QUEUED
        ).values_list("repository_id", flat=True)
    )
    wanted = ids - absorbed
    if not wanted:
        return 0
    guns = dict(Repository.objects.filter(pk__in=wanted).values_list("pk", "gun"))
    now = timezone.now()
    Job.objects.bulk_create(
        [
            Job(
                kind=Job.Kind.SYNC,
                repository_id=pk,
                gun=gun,
                caused_by=actor,
                cause=cause[:255],
                enqueued_at=now,
            )
            for pk, gun in guns.items()
        ],
        ignore_conflicts=True,  # a sync queued meanwhile absorbs this request
    )
    job_ids = list(
        Job.objects.filter(
            repository_id__in=wanted, kind=Job.Kind.SYNC, status=Job.Status.QUEUED
        ).values_list("pk", flat=True)
    )
    delay = settings.GATEHOUSE_SYNC_DELAY_SECONDS
    transaction.on_commit(lambda: _send(job_ids, countdown=delay))
    return len(job_ids)


def identity_changed(
    *,
    actor: User | None,
    cause: str,
    teams: Iterable[Team] = (),
    users: Iterable[User] = (),
) -> None:
    """Sync every repository whose desired delegations may have changed, and make the next
    evaluation read people, teams and keys afresh."""
    evaluation_inputs_changed()
    team_ids = [team.pk for team in teams]
    repositories = set(selectors.repositories_of_teams(team_ids)) if team_ids else set()
    for user in users:
        repositories.update(selectors.repositories_of_user(user))
    repositories_sync_request(repositories=repositories, actor=actor, cause=cause)


# --- Repositories -------------------------------------------------------------------------


def _teams_named(names: Iterable[str] | None) -> list[Team]:
    names = list(dict.fromkeys(names or []))
    teams = {team.name: team for team in Team.objects.filter(name__in=names)}
    unknown = [name for name in names if name not in teams]
    if unknown:
        raise ValidationError({"signer_teams": [f"Unknown team: {name}." for name in unknown]})
    return [teams[name] for name in names]


def default_signer_teams() -> list[Team]:
    """New repositories are signed by the content-trust policy's signing teams."""
    return list(policy_get().signing_teams.all())


def _validated_gun(gun: str) -> str:
    repository = Repository(gun=gun)
    try:
        repository.full_clean(validate_unique=True, exclude=["signer_teams"])
    except ValidationError as error:
        raise ValidationError({"gun": error.message_dict.get("gun", ["Invalid GUN."])}) from error
    return gun


@transaction.atomic
def repository_create(
    *, actor: User, gun: str, signer_team_names: list[str] | None = None
) -> tuple[Repository, Job]:
    """A repository to initialise on Notary, with its ``initialize`` job."""
    _validated_gun(gun)
    teams = default_signer_teams() if signer_team_names is None else _teams_named(signer_team_names)
    try:
        with transaction.atomic():
            repository = Repository.objects.create(gun=gun, created_by=actor)
    except IntegrityError as error:
        raise ValidationError({"gun": ["Gatehouse manages this GUN already."]}) from error
    repository.signer_teams.set(teams)
    job = _new_job(
        kind=Job.Kind.INITIALIZE, repository=repository, actor=actor, cause="repository created"
    )
    audit_record(
        action="repository.created",
        actor=actor,
        target_type="repository",
        target_id=gun,
        after={"signer_teams": sorted(team.name for team in teams), "job": job.pk},
    )
    logger.info("repository %s created by %s", gun, actor)
    return repository, job


@dataclass(frozen=True)
class BulkResult:
    created: list[tuple[Repository, Job]]
    skipped: list[str]


@transaction.atomic
def repositories_create_bulk(
    *, actor: User, guns: list[str], signer_team_names: list[str] | None = None
) -> BulkResult:
    """Many repositories at once, for provisioning scripts: all valid or none made.

    GUNs Gatehouse already manages are skipped and reported, so a script can run again.
    """
    errors = {}
    for gun in dict.fromkeys(guns):
        try:
            Repository(gun=gun).full_clean(validate_unique=False, exclude=["signer_teams"])
        except ValidationError as error:
            errors[gun] = error.message_dict.get("gun", ["Invalid GUN."])
    if errors:
        raise ValidationError(
            {"guns": [f"{gun}: {' '.join(messages)}" for gun, messages in errors.items()]}
        )
    teams = default_signer_teams() if signer_team_names is None else _teams_named(signer_team_names)
    existing = set(Repository.objects.filter(gun__in=guns).values_list("gun", flat=True))
    created = []
    for gun in dict.fromkeys(guns):
        if gun in existing:
            continue
        repository = Repository.objects.create(gun=gun, created_by=actor)
        repository.signer_teams.set(teams)
        job = _new_job(
            kind=Job.Kind.INITIALIZE, repository=repository, actor=actor, cause="bulk creation"
        )
        audit_record(
            action="repository.created",
            actor=actor,
            target_type="repository",
            target_id=gun,
            after={"signer_teams": sorted(team.name for team in teams), "job": job.pk},
        )
        created.append((repository, job))
    logger.info("%d repositories created in bulk by %s", len(created), actor)
    return BulkResult(created=created, skipped=sorted(existing))


@transaction.atomic
def repository_update_signer_teams(
    *, actor: User, repository: Repository, signer_team_names: list[str]
) -> Job:
    before = sorted(repository.signer_teams.values_list("name", flat=True))
    repository.signer_teams.set(_teams_named(signer_team_names))
    audit_record(
        action="repository.signer_teams_changed",
        actor=actor,
        target_type="repository",
        target_id=repository.gun,
        before={"signer_teams": before},
        after={"signer_teams": sorted(set(signer_team_names))},
    )
    return repository_sync_request(
        repository=repository, actor=actor, cause="signer teams changed", delay=0
    )


@transaction.atomic
def repository_delete(*, actor: User, repository: Repository) -> Job:
    """Remove the trust data from Notary, then the repository, through a ``delete`` job."""
    job = _new_job(
        kind=Job.Kind.DELETE, repository=repository, actor=actor, cause="repository deleted"
    )
    audit_record(
        action="repository.delete_requested",
        actor=actor,
        target_type="repository",
        target_id=repository.gun,
        after={"job": job.pk},
    )
    return job


def _load_targets_key(pem: str, passphrase: str) -> ec.EllipticCurvePrivateKey:
    """A targets key as the notary CLI stores it (encrypted, with headers) or a plain one."""
    try:
        return load_private_key_pem(pem, passphrase or None)
    except WrongPassphrase as error:
        raise ValidationError({"passphrase": ["The passphrase does not open this key."]}) from error
    except NotAPrivateKey as error:
        raise ValidationError(
            {"targets_key": [f"This is not an ECDSA private key: {error}"]}
        ) from error


def repository_adopt(
    *,
    actor: User,
    gun: str,
    targets_key: str,
    passphrase: str = "",
    signer_team_names: list[str] | None = None,
    client: NotaryClient | None = None,
) -> tuple[Repository, Job]:
    """Take over a repository initialised elsewhere, given its targets key.

    Checked against Notary before anything is stored: the key must be the targets key in
    the repository's root, and the snapshot key must be the server's. The root seen now is
    pinned for later reads.
    """
    _validated_gun(gun)
    teams = default_signer_teams() if signer_team_names is None else _teams_named(signer_team_names)
    private_key = _load_targets_key(targets_key, passphrase)
    client = client or notary_client()
    try:
        root = client.read_root(gun)
    except NotFound as error:
        raise ValidationError({"gun": [f"{gun} has no trust data on Notary to adopt."]}) from error
    targets_ids = root.roles["targets"].keyids
    ours = plain_signing_key(private_key).key_id
    held = [root.keys[key_id] for key_id in targets_ids if key_id in root.keys]
    if ours not in targets_ids and not any(
        load_public_key(key) == private_key.public_key() for key in held
    ):
        raise ValidationError({"targets_key": [f"This is not the targets key of {gun}."]})
    if not client.server_manages_snapshot(gun, root):
        raise ValidationError(
            {
                "gun": [
                    f"The snapshot key of {gun} is not managed by the server. Run "
                    f"`notary key rotate {gun} snapshot -r` and publish, then adopt it."
                ]
            }
        )
    # As root.json names them: Docker's trust pinning compares the ID of each root
    # certificate, so the daemon.json snippet pins what evaluations pin.
    root_key_ids = list(root.roles["root"].keyids)
    with transaction.atomic():
        try:
            with transaction.atomic():
                repository = Repository.objects.create(
                    gun=gun,
                    created_by=actor,
                    adopted=True,
                    pinned_root_key_ids=root_key_ids,
                    targets_key=custody.targets_key_store(private_key),
                )
        except IntegrityError as error:
            raise ValidationError({"gun": ["Gatehouse manages this GUN already."]}) from error
        repository.signer_teams.set(teams)
        job = _new_job(kind=Job.Kind.ADOPT, repository=repository, actor=actor, cause="adopted")
        audit_record(
            action="repository.adopted",
            actor=actor,
            target_type="repository",
            target_id=gun,
            after={
                "signer_teams": sorted(team.name for team in teams),
                "pinned_root_key_ids": root_key_ids,
                "job": job.pk,
            },
        )
    logger.info("repository %s adopted by %s", gun, actor)
    return repository, job


def root_key_ensure() -> str:
    """The canonical ID of Gatehouse's root key, made now if it does not exist yet."""
    return custody.root_key().key_id


def root_key_export(*, actor: User, passphrase: str) -> bytes:
    """The root key, encrypted under ``passphrase``; every export is recorded."""
    if len(passphrase) < ROOT_EXPORT_MIN_PASSPHRASE:
        raise ValidationError(
            {"passphrase": [f"Use at least {ROOT_EXPORT_MIN_PASSPHRASE} characters."]}
        )
    if len(passphrase.encode("utf-8")) > ROOT_EXPORT_MAX_PASSPHRASE_BYTES:
        raise ValidationError(
            {"passphrase": [f"Use at most {ROOT_EXPORT_MAX_PASSPHRASE_BYTES} bytes (UTF-8)."]}
        )
    pem = custody.root_key_export(passphrase)
    RootKeyExport.objects.create(actor=actor)
    audit_record(
        action="root_key.exported",
        actor=actor,
        target_type="root_key",
        target_id=custody.root_key().key_id,
    )
    logger.info("root key exported by %s", actor)
    return pem


# --- Rotating the token-signing key -----------------------------------------------------

TOKEN_KEY = "token_key"  # noqa: S105 - the audit log's target type, not a secret
TOKENS_UNEXPIRED = "tokens_unexpired"  # a ValidationError code
NOTARY_DISTRUSTS = "notary_distrusts_key"  # a ValidationError code
NOTARY_UNCHECKED = "notary_unchecked"  # a ValidationError code


def token_key_stage() -> CustodyKey:
    """Make the next token key, which signs nothing until ``token_key_activate``: first
    notary-server must be given a bundle that trusts it (``notary_server_config``)."""
    custody.token_key()  # the current key, made on first use, stays in the bundle
    with transaction.atomic():
        staged = CustodyKey.objects.filter(
            kind=CustodyKey.Kind.TOKEN, state=CustodyKey.State.STAGED
        ).first()
        if staged is not None:
            raise ValidationError(f"Token key {staged.key_id} is staged already; activate it.")
        try:
            with transaction.atomic():
                key = custody.token_key_create_staged()
        except IntegrityError as error:  # staged at the same moment elsewhere
            raise ValidationError("Another token key was staged at the same moment.") from error
        audit_record(
            action="token_key.staged",
            actor=None,
            target_type=TOKEN_KEY,
            target_id=key.key_id,
            after={"state": key.state},
        )
    logger.info("token key %s staged", key.key_id)
    return key


class NotaryCheck(StrEnum):
    """What ``token_key_activate`` learnt from notary-server before switching keys."""

    TRUSTED = "trusted"  # it accepted a token the staged key signed
    NO_AUTH = "no_auth"  # it answers without a token: it refuses none
    NO_NOTARY_URL = "no_notary_url"  # not asked: NOTARY_URL is not set
    SKIPPED = "skipped"  # not asked: the caller said so


@dataclass(frozen=True)
class TokenKeyActivation:
    key: CustodyKey
    notary_check: NotaryCheck


@transaction.atomic
def token_key_activate(*, check_notary: bool = True) -> TokenKeyActivation:
    """Sign new tokens with the staged key; the current one retires, and stays trusted
    until the tokens it signed have expired. Every process reads which key is current at
    each token, so they all switch at their next one.

    First, unless ``check_notary`` is off, notary-server must accept a token the staged key
    signed: switching to a key it does not trust yet would get every token refused, those of
    Gatehouse's own jobs too. The keys stay locked meanwhile, so what was checked is what
    is activated.
    """
    keys = {
        key.state: key
        for key in CustodyKey.objects.select_for_update().filter(
            kind=CustodyKey.Kind.TOKEN,
            state__in=[CustodyKey.State.STAGED, CustodyKey.State.CURRENT],
        )
    }
    staged, previous = keys.get(CustodyKey.State.STAGED), keys.get(CustodyKey.State.CURRENT)
    if staged is None:
        raise ValidationError("No token key is staged; stage one first.")
    notary_check = _notary_token_check(staged) if check_notary else NotaryCheck.SKIPPED
    now = timezone.now()
    if previous is not None:  # out first: one current key at a time (a unique index)
        previous.state, previous.superseded_at = CustodyKey.State.RETIRING, now
        previous.save(update_fields=["state", "superseded_at"])
    staged.state, staged.activated_at = CustodyKey.State.CURRENT, now
    staged.save(update_fields=["state", "activated_at"])
    audit_record(
        action="token_key.activated",
        actor=None,
        target_type=TOKEN_KEY,
        target_id=staged.key_id,
        before={"state": CustodyKey.State.STAGED},
        after={
            "state": staged.state,
            "replaces": previous.key_id if previous else None,
            "notary_check": notary_check.value,
        },
    )
    logger.log(
        logging.WARNING if notary_check is NotaryCheck.SKIPPED else logging.INFO,
        "token key %s activated (notary-server check: %s); %s retiring",
        staged.key_id,
        notary_check.value,
        previous.key_id if previous else "no key",
    )
    return TokenKeyActivation(staged, notary_check)


def _notary_token_check(key: CustodyKey) -> NotaryCheck:
    """Show notary-server a token ``key`` signed (``tokens.check_token``: it grants nothing)
    over Gatehouse's own transport, with its TLS settings; ``ValidationError`` unless it is
    accepted, or notary-server does not ask for tokens at all."""
    url = settings.NOTARY_URL
    if not url:
        return NotaryCheck.NO_NOTARY_URL
    # Here, not at the top: trust.tokens -> accounts.selectors -> accounts.services -> here.
    from trust.tokens import check_token

    transport = notary_transport()
    try:
        verdict = transport.token_verdict(check_token(custody.token_signer_for(key)))
    except NotaryError as error:
        logger.warning("token key %s not activated: cannot check it: %s", key.key_id, error)
        raise ValidationError(
            f"Cannot check that notary-server at {url} trusts token key {key.key_id}: {error}.",
            code=NOTARY_UNCHECKED,
        ) from error
    finally:
        transport.close()
    if verdict is TokenVerdict.INVALID:
        logger.warning("token key %s not activated: notary-server refuses it", key.key_id)
        raise ValidationError(
            f"notary-server at {url} refuses tokens signed by token key {key.key_id} "
            "(invalid_token): it does not trust that key yet.",
            code=NOTARY_DISTRUSTS,
        )
    if verdict is TokenVerdict.NOT_REQUIRED:
        return NotaryCheck.NO_AUTH
    return NotaryCheck.TRUSTED


@transaction.atomic
def token_key_retire(*, force: bool = False) -> list[CustodyKey]:
    """Stop trusting the retiring keys and delete their private keys (the rows stay, with
    their certificates). Refused while tokens one signed may be unexpired, unless ``force``:
    notary-server, once given the new bundle, would refuse those tokens."""
    retiring = list(
        CustodyKey.objects.select_for_update()
        .filter(kind=CustodyKey.Kind.TOKEN, state=CustodyKey.State.RETIRING)
        .order_by("created_at", "id")
    )
    if not retiring:
        raise ValidationError("No token key is retiring.")
    now = timezone.now()
    unexpired = {
        key.key_id: expires
        for key in retiring
        if (expires := selectors.token_key_tokens_expire_at(key)) is not None and expires > now
    }
    if unexpired and not force:
        key_id, expires = max(unexpired.items(), key=lambda item: item[1])
        raise ValidationError(
            f"Tokens signed by token key {key_id} may be valid until "
            f"{expires:%Y-%m-%d %H:%M:%S} UTC; retire it after that.",
            code=TOKENS_UNEXPIRED,
        )
    for key in retiring:
        key.state, key.retired_at, key.sealed_private_key = CustodyKey.State.RETIRED, now, b""
        key.save(update_fields=["state", "retired_at", "sealed_private_key"])
        audit_record(
            action="token_key.retired",
            actor=None,
            target_type=TOKEN_KEY,
            target_id=key.key_id,
            before={"state": CustodyKey.State.RETIRING},
            after={"state": key.state, "forced": key.key_id in unexpired},
        )
        if key.key_id in unexpired:
            logger.warning("token key %s retired by force, its tokens unexpired", key.key_id)
        else:
            logger.info("token key %s retired", key.key_id)
    return retiring


# --- Running jobs -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOutcome:
    """What the task should do next: nothing, or run the job again after ``retry_in``."""

    retry_in: float | None = None


DONE = JobOutcome()


@dataclass(frozen=True)
class Published:
    """What a runner that brought Notary in step returns: the job's result, and the
    repository fields recording what Notary holds now (``_recorded``), which ``_finish``
    writes in the UPDATE that releases the repository. Other runners return the result."""

    result: dict
    record: dict


def _claim(job: Job) -> Job | None:
    """Claim the repository and start the job, in one transaction; None if either is taken.

    At most one job works on a repository at a time. The claim is a lease, not a lock held
    open: a worker killed mid-job frees the repository when its lease (the task's hard time
    limit) runs out, and the redelivered job takes it. The job moves to running by
    compare-and-set, so a finished job never starts again.
    """
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.GATEHOUSE_JOB_LEASE_SECONDS)
    with transaction.atomic():
        claimed = (
            Repository.objects.filter(pk=job.repository_id)
            .filter(Q(lock_job__isnull=True) | Q(lock_job=job) | Q(lock_expires_at__lt=now))
            .update(lock_job=job, lock_expires_at=lease)
        )
        if not claimed:
            return None
        started = Job.objects.filter(
            pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
        ).update(
            status=Job.Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
        )
        if not started:
            _release(job)
            return None
        claimed_job = Job.objects.select_related("repository", "repository__targets_key").get(
            pk=job.pk
        )
        audit_record(
            action="job.started",
            actor=None,
            target_type="job",
            target_id=job.pk,
            after={
                "kind": claimed_job.kind,
                "gun": claimed_job.gun,
                "attempt": claimed_job.attempts,
            },
        )
        return claimed_job


def _release(job: Job) -> None:
    Repository.objects.filter(pk=job.repository_id, lock_job=job).update(
        lock_job=None, lock_expires_at=None
    )


def _record_and_release(job: Job, record: dict) -> None:
    """Record what was published and release the repository in one UPDATE, where it took
    two. A job whose lease ran out, so that another job holds the repository now, still
    records (as it always did) but leaves the other job's claim alone."""
    released = Repository.objects.filter(pk=job.repository_id, lock_job=job).update(
        **record, lock_job=None, lock_expires_at=None
    )
    if not released:
        Repository.objects.filter(pk=job.repository_id).update(**record)


def _finish(
    job: Job,
    status: str,
    *,
    error: str = "",
    result: dict | None = None,
    record: dict | None = None,
) -> bool:
    """Unfinished -> finished, by compare-and-set, releasing the repository; ``record``, the
    repository fields of a ``Published`` outcome, is written in the same transaction."""
    with transaction.atomic():
        finished = Job.objects.filter(
            pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
        ).update(
            status=status,
            error=error,
            result=result,
            finished_at=timezone.now(),
            progress_done=F("progress_total")
            if status == Job.Status.SUCCEEDED
            else F("progress_done"),
        )
        if job.repository_id is not None and record is not None:
            _record_and_release(job, record)
        elif job.repository_id is not None:
            _release(job)
        if finished:
            audit_record(
                action="job.finished",
                actor=None,
                target_type="job",
                target_id=job.pk,
                after={"kind": job.kind, "gun": job.gun, "status": status, "error": error},
            )
    return bool(finished)


def _backoff(attempts: int) -> float:
    return min(
        settings.GATEHOUSE_JOB_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0),
        settings.GATEHOUSE_JOB_BACKOFF_MAX_SECONDS,
    )


def job_run(*, job_id: int) -> JobOutcome:
    """Run a job once. Unavailable Notary: retry later. Rejected or invalid: fail now."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in Job.FINISHED:
        return DONE
    if job.repository_id is None:
        _finish(job, Job.Status.FAILED, error="The repository no longer exists.")
        return DONE
    claimed = _claim(job)
    if claimed is None:
        job.refresh_from_db(fields=["status"])
        return DONE if job.status in Job.FINISHED else JobOutcome(retry_in=LOCK_RETRY_SECONDS)
    job, repository = claimed, claimed.repository
    try:
        outcome = RUNNERS[job.kind](job, repository)
    except NotaryUnavailable as error:
        return _retry_or_fail(job, repository, error)
    except (NotaryRejected, InvalidMetadata) as error:
        _fail(job, repository, str(error))
    except Exception:
        # A bug, not a Notary problem: fail the job for a person to see, never retry it.
        logger.exception("job %s %s on %s crashed", job.pk, job.kind, job.gun)
        _fail(job, repository, "Internal error in Gatehouse; the log has the details.")
    else:
        if isinstance(outcome, Published):
            _finish(job, Job.Status.SUCCEEDED, result=outcome.result, record=outcome.record)
        else:
            _finish(job, Job.Status.SUCCEEDED, result=outcome)
        logger.info("job %s %s on %s succeeded", job.pk, job.kind, job.gun)
    return DONE


def _retry_or_fail(job: Job, repository: Repository, error: NotaryError) -> JobOutcome:
    if job.attempts >= settings.GATEHOUSE_JOB_MAX_ATTEMPTS:
        _fail(job, repository, f"Notary stayed unavailable after {job.attempts} attempts: {error}")
        return DONE
    delay = _backoff(job.attempts)
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            error=f"Notary unavailable (attempt {job.attempts} of "
            f"{settings.GATEHOUSE_JOB_MAX_ATTEMPTS}), retrying in {delay:.0f} s: {error}",
            enqueued_at=timezone.now(),
        )
        _release(job)
    logger.warning("job %s on %s: Notary unavailable, retry in %.0f s", job.pk, job.gun, delay)
    return JobOutcome(retry_in=delay)


def _fail(job: Job, repository: Repository, message: str) -> None:
    _finish(job, Job.Status.FAILED, error=message)
    if job.kind in (Job.Kind.INITIALIZE, Job.Kind.ADOPT):
        Repository.objects.filter(pk=repository.pk).update(state=Repository.State.FAILED)
    logger.warning("job %s %s on %s failed: %s", job.pk, job.kind, job.gun, message)


def _desired_tuf_keys(repository: Repository) -> dict:
    return {
        role: selectors.tuf_keys(keys)
        for role, keys in selectors.desired_delegations(repository).items()
    }


def _recorded(notary: RepositoryState, **fields: object) -> dict:
    """The repository fields saying what was published and that it is in step now."""
    return {
        "delegations": [
            {"role": role.name, "key_ids": list(role.keyids)} for role in notary.targets.delegations
        ],
        "notary_state": notary.to_json(),
        "last_synced_at": timezone.now(),
        "drift": None,
        **fields,
    }


def _run_initialize(job: Job, repository: Repository) -> Published:
    if repository.targets_key is None:
        with transaction.atomic():
            repository.targets_key = custody.targets_key_create()
            repository.save(update_fields=["targets_key"])
    client = notary_client()
    targets_key = custody.signing_key(repository.targets_key)
    root_key = custody.root_signing_key_for(repository.gun)
    try:
        state = client.initialize(
            repository.gun,
            root_key=root_key,
            targets_key=targets_key,
            delegations=_desired_tuf_keys(repository),
        )
    except RepositoryExists as error:
        if not _initialised_by_us(client, repository):
            raise NotaryRejected(
                "already has trust data on Notary; Gatehouse manages only the repositories it "
                "initialised (adopt it with its targets key instead)",
                gun=repository.gun,
                code="EXISTS",
            ) from error
        return _run_sync(job, repository)  # an earlier attempt got there before a crash
    return Published(
        {"published": True, "delegations": [d.name for d in state.targets.delegations]},
        # The GUN's root certificate, by the ID Docker's trust pinning compares (pins.py).
        _recorded(state, state=Repository.State.READY, pinned_root_key_ids=[root_key.key_id]),
    )


def _initialised_by_us(client: NotaryClient, repository: Repository) -> bool:
    root = client.read_root(repository.gun)
    return repository.targets_key.key_id in root.roles["targets"].keyids


def _run_sync(job: Job, repository: Repository) -> Published:
    read: list[tuple[str, str]] = []
    client = NotaryClient(
        notary_client().transport,
        on_role_file=lambda gun, role, file: read.append((role, file.fingerprint)),
    )
    known = RepositoryState.from_json(repository.notary_state) if repository.notary_state else None
    update = client.set_delegations(
        repository.gun,
        _desired_tuf_keys(repository),
        targets_key=custody.signing_key(repository.targets_key),
        custodian=custody.signing_key(custody.custodian_key()),
        state=known,
    )
    role_files_seen(gun=repository.gun, files=read)
    return Published(
        {
            "published": update.changed,
            "reset_roles": list(update.reset_roles),
            "delegations": [d.name for d in update.state.targets.delegations],
        },
        _recorded(update.state, state=Repository.State.READY),
    )


def _run_delete(job: Job, repository: Repository) -> dict:
    repository_forgotten(gun=repository.gun, job_id=job.pk)
    notary_client().delete(repository.gun)
    targets_key = repository.targets_key
    with transaction.atomic():
        repository.delete()
        if targets_key is not None:
            targets_key.delete()
    return {"deleted": True}


RUNNERS = {
    Job.Kind.INITIALIZE: _run_initialize,
    Job.Kind.ADOPT: _run_sync,
    Job.Kind.SYNC: _run_sync,
    Job.Kind.DELETE: _run_delete,
}


# --- Periodic work ------------------------------------------------------------------------


def _drift(repository: Repository, state: RepositoryState) -> dict | None:
    """Roles and keys Notary holds that it should not, and those it lacks."""
    wanted = selectors.desired_delegations(repository)
    desired = {role: {key.tuf_key_id for key in keys} for role, keys in wanted.items()}
    actual = state.delegations()
    custodian = custody.custodian_key().key_id
    missing = {role: keys - actual.get(role, set()) for role, keys in desired.items()}
    unexpected = {
        role: keys - desired.get(role, set()) - {custodian} for role, keys in actual.items()
    }
    if not any(missing.values()) and not any(unexpected.values()):
        return None

    def shown(key_id: str) -> str:  # by the ID `notary key list` shows
        key = state.targets.delegation_keys.get(key_id)
        return tuf_key_canonical_id(key) if key is not None else key_id

    canonical = {key.tuf_key_id: key.id for keys in wanted.values() for key in keys}
    return {
        "missing": {
            role: sorted(canonical.get(k, k) for k in keys)
            for role, keys in missing.items()
            if keys
        },
        "unexpected": {
            role: sorted(shown(k) for k in keys) for role, keys in unexpected.items() if keys
        },
    }


def drift_check(*, repository: Repository) -> dict | None:
    """Read the repository from Notary, record any drift, and ask for a sync if there is.

    Every file the repository published since the last check is walked too (its
    changefeed), so that Gatehouse has seen each signed file of every repository it
    manages within one drift interval of its publication (docs/threat-model.md, "Replays").
    """
    state = notary_client().read_state(repository.gun)
    if not repository.pinned_root_key_ids:  # made before the root certificate was recorded
        root = notary_client().read_root(repository.gun)
        Repository.objects.filter(pk=repository.pk).update(
            pinned_root_key_ids=list(root.roles["root"].keyids)
        )
    seen = history_seen(gun=repository.gun)
    signers_histories_seen(gun=repository.gun, new=seen.new)
    try:
        verified_repository(repository.gun)
    except InvalidMetadata as error:
        logger.warning("drift check of %s: trust data does not verify: %s", repository.gun, error)
    drift = _drift(repository, state)
    Repository.objects.filter(pk=repository.pk).update(
        drift=drift, drift_checked_at=timezone.now(), notary_state=state.to_json()
    )
    if drift is not None:
        repository_sync_request(repository=repository, actor=None, cause="drift found", delay=0)
    elif any(custody.custodian_key().key_id in keys for keys in state.delegations().values()):
        # Not drift: the custodian keeps signers in. A sync lets it go once a remaining
        # signer has published over its reset; until then the sync changes nothing.
        repository_sync_request(
            repository=repository, actor=None, cause="custodian still delegated", delay=0
        )
    return drift


def drift_check_all() -> int:
    """The periodic check; returns how many repositories had drifted."""
    drifted = 0
    for repository in Repository.objects.filter(state=Repository.State.READY):
        try:
            if drift_check(repository=repository) is not None:
                drifted += 1
        except NotaryError as error:
            logger.warning("drift check of %s failed: %s", repository.gun, error)
    return drifted


def jobs_requeue_stale(*, older_than: dt.timedelta | None = None) -> int:
    """Send again the jobs whose message may have been lost (a broker restarted empty), those
    sent more than ``older_than`` (``GATEHOUSE_JOB_REQUEUE_SECONDS``) ago.

    A duplicate is harmless: the repository lock and the status compare-and-set let only
    one run, and a finished job ignores its message.
    """
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.GATEHOUSE_JOB_REQUEUE_SECONDS)
    cutoff = timezone.now() - older_than
    stale = Job.objects.filter(
        status__in=[Job.Status.QUEUED, Job.Status.RUNNING], enqueued_at__lt=cutoff
    ).exclude(repository__lock_expires_at__gt=timezone.now())
    count = 0
    for job in stale:
        _enqueue(job)
        count += 1
    return count
