"""Repositories Gatehouse manages: creating one or many, adopting one made elsewhere,
changing who signs it, deleting it. Each write queues its Notary work as a job after commit.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Team, User
from audit.services import audit_record
from trust import custody
from trust.models import Job, Repository
from trust.notary import references
from trust.notary.client import NotaryClient
from trust.notary.errors import NotFound
from trust.notary.keys import load_public_key, plain_signing_key
from trust.notary.private_keys import NotAPrivateKey, WrongPassphrase, load_private_key_pem
from trust.notary_access import notary_client
from trust.services.jobs import job_create
from trust.services.sync_requests import repository_sync_request
from trust.signals import default_signer_teams_wanted

logger = logging.getLogger(__name__)


def _teams_named(names: Iterable[str] | None) -> list[Team]:
    names = list(dict.fromkeys(names or []))
    teams = {team.name: team for team in Team.objects.filter(name__in=names)}
    unknown = [name for name in names if name not in teams]
    if unknown:
        raise ValidationError({"signer_teams": [f"Unknown team: {name}." for name in unknown]})
    return [teams[name] for name in names]


def default_signer_teams() -> list[Team]:
    """The teams a new repository's signers come from when its creator names none: what the
    receivers of ``default_signer_teams_wanted`` answer (the policy's signing teams)."""
    teams: dict[int, Team] = {}
    for _, answer in default_signer_teams_wanted.send(sender=Repository):
        # Each answer is the receiver's list of teams (django-stubs types it as ``str | None``).
        teams.update((team.pk, team) for team in cast(list[Team], answer))
    return list(teams.values())


def _gun_error(gun: str, error: references.InvalidName) -> str:
    return f"{references.shown(gun)} is not a repository name Docker accepts: {error}."


def _validated_gun(gun: str) -> str:
    """The GUN as Docker normalises it (``app`` → ``docker.io/library/app``), not yet
    managed; else a ``ValidationError`` on ``gun``."""
    try:
        gun = references.parse_name(gun)
    except references.InvalidName as error:
        raise ValidationError({"gun": [_gun_error(gun, error)]}) from error
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
    """A repository to initialise on Notary, with its ``initialize`` job. A short name is
    stored as Docker normalises it (``app`` → ``docker.io/library/app``)."""
    gun = _validated_gun(gun)
    teams = default_signer_teams() if signer_team_names is None else _teams_named(signer_team_names)
    try:
        with transaction.atomic():
            repository = Repository.objects.create(gun=gun, created_by=actor)
    except IntegrityError as error:
        raise ValidationError({"gun": ["Gatehouse manages this GUN already."]}) from error
    repository.signer_teams.set(teams)
    job = job_create(
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

    GUNs are normalised as Docker normalises them; those Gatehouse already manages are
    skipped and reported, so a script can run again.
    """
    errors, normalised = [], []
    for gun in dict.fromkeys(guns):
        try:
            normalised.append(references.parse_name(gun))
        except references.InvalidName as error:
            errors.append(_gun_error(gun, error))
    if errors:
        raise ValidationError({"guns": errors})
    guns = list(dict.fromkeys(normalised))
    teams = default_signer_teams() if signer_team_names is None else _teams_named(signer_team_names)
    existing = set(Repository.objects.filter(gun__in=guns).values_list("gun", flat=True))
    created = []
    for gun in dict.fromkeys(guns):
        if gun in existing:
            continue
        repository = Repository.objects.create(gun=gun, created_by=actor)
        repository.signer_teams.set(teams)
        job = job_create(
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
    job = job_create(
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
    pinned for later reads. A short name is read as Docker normalises it.
    """
    gun = _validated_gun(gun)
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
        job = job_create(kind=Job.Kind.ADOPT, repository=repository, actor=actor, cause="adopted")
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
