"""The Notary work of each job kind, run by the job engine (``trust.services.jobs``).

Notary being unreachable is transient: the engine retries with backoff. A rejection or
trust data that does not verify fails the job with Notary's message.
"""

from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from trust import custody, selectors
from trust.models import CustodyKey, Job, Repository
from trust.notary import references
from trust.notary.client import NotaryClient
from trust.notary.errors import (
    InvalidMetadata,
    NotaryRejected,
    NotaryUnavailable,
    NotFound,
    RepositoryExists,
)
from trust.notary.repository import RepositoryState
from trust.notary_access import notary_client
from trust.replays import repository_forgotten, role_files_seen
from trust.services.jobs import JobRunner, RunResult, claimed_repository_id, job_runner_register


class NotaryRunner(JobRunner):
    service = "Notary"
    transient_errors = (NotaryUnavailable,)
    permanent_errors = (NotaryRejected, InvalidMetadata)


def _claimed(job: Job) -> Repository:
    """``job.repository``, never None here: the engine runs a job only once it has claimed
    that repository (``jobs._claim``), and a job whose repository is gone claims nothing."""
    return cast(Repository, job.repository)


def _targets_key(repository: Repository) -> CustodyKey:
    """The repository's targets key, never None here: an initialisation makes it before it
    publishes anything, and an adoption brings it, so a repository on Notary has one."""
    return cast(CustodyKey, repository.targets_key)


def _desired_tuf_keys(repository: Repository) -> dict[str, Any]:
    return {
        role: selectors.tuf_keys(keys)
        for role, keys in selectors.desired_delegations(repository).items()
    }


def _recorded(notary: RepositoryState, **fields: object) -> dict[str, Any]:
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


def _sync(repository: Repository) -> RunResult:
    """Make the repository's delegations on Notary what Gatehouse says they should be."""
    read: list[tuple[str, str]] = []
    client = NotaryClient(
        notary_client().transport,
        on_role_file=lambda gun, role, file: read.append((role, file.fingerprint)),
    )
    known = RepositoryState.from_json(repository.notary_state) if repository.notary_state else None
    update = client.set_delegations(
        repository.gun,
        _desired_tuf_keys(repository),
        targets_key=custody.signing_key(_targets_key(repository)),
        custodian=custody.signing_key(custody.custodian_key()),
        state=known,
    )
    role_files_seen(gun=repository.gun, files=read)
    return RunResult(
        {
            "published": update.changed,
            "reset_roles": list(update.reset_roles),
            "delegations": [d.name for d in update.state.targets.delegations],
        },
        _recorded(update.state, state=Repository.State.READY),
    )


def _mark_failed(job: Job) -> None:
    """A repository that never became ready says so, for a person to see and delete."""
    # Only a job that ran fails with its runner, and a job runs only once claimed.
    Repository.objects.filter(pk=claimed_repository_id(job)).update(state=Repository.State.FAILED)


@job_runner_register
class SyncRunner(NotaryRunner):
    kind = Job.Kind.SYNC

    def run(self, job: Job) -> RunResult:
        repository = _claimed(job)
        if repository.state != Repository.State.READY and not repository.adopted:
            # Nothing on Notary to bring in step yet: an initialisation still to run reads
            # the delegations when it runs, and a failed one leaves the repository to delete.
            return RunResult(
                {"published": False, "skipped": f"the repository is {repository.state}"}
            )
        return _sync(repository)


@job_runner_register
class AdoptRunner(NotaryRunner):
    """An adopted repository's first sync: its targets key is Gatehouse's from now on."""

    kind = Job.Kind.ADOPT

    def run(self, job: Job) -> RunResult:
        return _sync(_claimed(job))

    def failed(self, job: Job) -> None:
        _mark_failed(job)


@job_runner_register
class InitializeRunner(NotaryRunner):
    kind = Job.Kind.INITIALIZE

    def run(self, job: Job) -> RunResult:
        repository = _claimed(job)
        if repository.targets_key is None:
            with transaction.atomic():
                repository.targets_key = custody.targets_key_create()
                repository.save(update_fields=["targets_key"])
        client = notary_client()
        root_key = custody.root_signing_key_for(repository.gun)
        try:
            state = client.initialize(
                repository.gun,
                root_key=root_key,
                targets_key=custody.signing_key(repository.targets_key),
                delegations=_desired_tuf_keys(repository),
            )
        except RepositoryExists as error:
            if not self._initialised_by_us(client, repository):
                raise NotaryRejected(
                    "already has trust data on Notary; Gatehouse manages only the repositories "
                    "it initialised (adopt it with its targets key instead)",
                    gun=repository.gun,
                    code="EXISTS",
                ) from error
            return _sync(repository)  # an earlier attempt got there before a crash
        return RunResult(
            {"published": True, "delegations": [d.name for d in state.targets.delegations]},
            # The GUN's root certificate, by the ID Docker's trust pinning compares (pins.py).
            _recorded(state, state=Repository.State.READY, pinned_root_key_ids=[root_key.key_id]),
        )

    def failed(self, job: Job) -> None:
        _mark_failed(job)

    @staticmethod
    def _initialised_by_us(client: NotaryClient, repository: Repository) -> bool:
        root = client.read_root(repository.gun)
        return _targets_key(repository).key_id in root.roles["targets"].keyids


@job_runner_register
class DeleteRunner(NotaryRunner):
    """Remove the trust data from Notary, then the repository and its targets key.

    A repository can always be deleted: one Notary knows nothing of (never initialised,
    or deleted there already) is deleted when Notary answers 404, and one whose GUN no
    request can address (stored before GUNs followed Docker's grammar, such as
    ``../x``) cannot have trust data on Notary, so only its row goes.
    """

    kind = Job.Kind.DELETE

    def run(self, job: Job) -> RunResult:
        repository = _claimed(job)
        notary = "deleted"
        if not references.notary_addressable(repository.gun):
            notary = "skipped: the GUN cannot name trust data on Notary"
        else:
            repository_forgotten(gun=repository.gun, job_id=job.pk)
            try:
                notary_client().delete(repository.gun)
            except NotFound:
                notary = "not found: nothing to delete"
        targets_key = repository.targets_key
        with transaction.atomic():
            repository.delete()
            if targets_key is not None:
                targets_key.delete()
        return RunResult({"deleted": True, "notary": notary})
