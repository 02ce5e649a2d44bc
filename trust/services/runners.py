"""The Notary work of each job kind, run by the job engine (``trust.services.jobs``).

Notary being unreachable is transient: the engine retries with backoff. A rejection or
trust data that does not verify fails the job with Notary's message.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from trust import custody, selectors
from trust.models import Job, Repository
from trust.notary.client import NotaryClient, RepositoryState
from trust.notary.errors import InvalidMetadata, NotaryRejected, NotaryUnavailable, RepositoryExists
from trust.notary_access import notary_client
from trust.replays import repository_forgotten, role_files_seen
from trust.services.jobs import JobRunner, RunResult, job_runner_register


class NotaryRunner(JobRunner):
    service = "Notary"
    transient_errors = (NotaryUnavailable,)
    permanent_errors = (NotaryRejected, InvalidMetadata)


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
        targets_key=custody.signing_key(repository.targets_key),
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
    Repository.objects.filter(pk=job.repository_id).update(state=Repository.State.FAILED)


@job_runner_register
class SyncRunner(NotaryRunner):
    kind = Job.Kind.SYNC

    def run(self, job: Job) -> RunResult:
        return _sync(job.repository)


@job_runner_register
class AdoptRunner(NotaryRunner):
    """An adopted repository's first sync: its targets key is Gatehouse's from now on."""

    kind = Job.Kind.ADOPT

    def run(self, job: Job) -> RunResult:
        return _sync(job.repository)

    def failed(self, job: Job) -> None:
        _mark_failed(job)


@job_runner_register
class InitializeRunner(NotaryRunner):
    kind = Job.Kind.INITIALIZE

    def run(self, job: Job) -> RunResult:
        repository = job.repository
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
        return repository.targets_key.key_id in root.roles["targets"].keyids


@job_runner_register
class DeleteRunner(NotaryRunner):
    """Remove the trust data from Notary, then the repository and its targets key."""

    kind = Job.Kind.DELETE

    def run(self, job: Job) -> RunResult:
        repository = job.repository
        repository_forgotten(gun=repository.gun, job_id=job.pk)
        notary_client().delete(repository.gun)
        targets_key = repository.targets_key
        with transaction.atomic():
            repository.delete()
            if targets_key is not None:
                targets_key.delete()
        return RunResult({"deleted": True})
