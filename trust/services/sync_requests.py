"""Asking for syncs: one repository, many at once, or every repository an identity change
may concern. A queued sync reads the desired state when it runs, so it absorbs later
requests for its repository.

A request that a queued sync absorbs locks that job's row until the requester's
transaction ends: a worker's claim (``jobs._claim``) waits for it, so the sync reads the
desired state with the requester's change in it. Without the lock a worker could start the
job between the request and its commit, read the state from before, and no later job
would follow."""

from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Team, User
from trust import selectors
from trust.models import Job, Repository
from trust.services.jobs import job_create, jobs_queued_record, jobs_send_on_commit


def repository_sync_request(
    *, repository: Repository, actor: User | None, cause: str, delay: float | None = None
) -> Job:
    """Ask for a sync; a sync already queued for the repository absorbs the request.

    The short delay (``GATEHOUSE_SYNC_DELAY_SECONDS``) lets a burst of changes end in one
    update.
    """
    delay = settings.GATEHOUSE_SYNC_DELAY_SECONDS if delay is None else delay
    with transaction.atomic():
        queued = (
            Job.objects.select_for_update()
            .filter(repository=repository, kind=Job.Kind.SYNC, status=Job.Status.QUEUED)
            .first()
        )
    if queued is not None:
        return queued
    try:
        with transaction.atomic():
            return job_create(
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
    with transaction.atomic():
        absorbed = set(
            Job.objects.select_for_update()
            .filter(repository_id__in=ids, kind=Job.Kind.SYNC, status=Job.Status.QUEUED)
            .order_by("pk")  # one order for every requester: no deadlock between two
            .values_list("repository_id", flat=True)
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
    jobs_queued_record(job_ids)
    jobs_send_on_commit(job_ids, countdown=settings.GATEHOUSE_SYNC_DELAY_SECONDS)
    return len(job_ids)


def identity_syncs_request(
    *, actor: User | None, cause: str, teams: Iterable[Team] = (), users: Iterable[User] = ()
) -> int:
    """Sync every repository whose desired delegations a change of these teams or users may
    have changed: those the teams sign, and those the users sign through any team.

    Failed repositories are left out: their initialisation or adoption failed, so a sync
    would fail too (a person deletes them, or asks for a sync of an adopted one). Pending
    ones are kept, so a change made while their initialisation runs still reaches Notary.
    """
    failed = Repository.State.FAILED
    team_ids = [team.pk for team in teams]
    repositories = (
        set(selectors.repositories_of_teams(team_ids).exclude(state=failed)) if team_ids else set()
    )
    for user in users:
        repositories.update(selectors.repositories_of_user(user).exclude(state=failed))
    return repositories_sync_request(repositories=repositories, actor=actor, cause=cause)
