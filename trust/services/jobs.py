"""The job engine: how any job is queued, claimed, run, retried and finished.

A job moves ``queued -> running -> succeeded | failed``, only forward, by compare-and-set,
so a duplicate message or a redelivery never runs finished work again. While it runs, it
holds its repository by a lease: at most one job works on a repository at a time, and a
worker killed mid-job frees it when the lease runs out. What a job does is the ``JobRunner``
of its kind (``trust.services.runners``); the engine knows nothing of Notary.
"""

import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from accounts.models import User
from audit.services import audit_record
from trust.models import Job, JobEvent, Repository

logger = logging.getLogger(__name__)

JOB_TASK = "trust.run_job"
LOCK_RETRY_SECONDS = 2.0
INTERNAL_ERROR = "Internal error in Gatehouse; the log has the details."


@dataclass(frozen=True)
class JobOutcome:
    """What the task should do next: nothing, or run the job again after ``retry_in``."""

    retry_in: float | None = None


DONE = JobOutcome()


@dataclass(frozen=True)
class RunResult:
    """What a runner did: the job's ``result``, and the repository fields recording it,
    written in the UPDATE that releases the repository (none for work that changes none)."""

    result: dict[str, Any]
    repository_fields: dict[str, Any] | None = None


class JobRunner(ABC):
    """The work of one job kind. ``run`` raises one of ``transient_errors`` to be retried
    with backoff, one of ``permanent_errors`` to fail with its message; anything else is a
    bug, and fails the job without retrying it."""

    kind: ClassVar[str]
    service: ClassVar[str]  # what a transient error means is unavailable, in messages
    transient_errors: ClassVar[tuple[type[Exception], ...]] = ()
    permanent_errors: ClassVar[tuple[type[Exception], ...]] = ()

    @abstractmethod
    def run(self, job: Job) -> RunResult:
        """Do the work; ``job.repository`` is claimed and loaded."""

    def failed(self, job: Job) -> None:  # noqa: B027 - most kinds change nothing more
        """After the job failed for good: record on the repository what that means."""


RUNNERS: dict[str, JobRunner] = {}


RunnerClass = TypeVar("RunnerClass", bound=type[JobRunner])


def job_runner_register(runner: RunnerClass) -> RunnerClass:
    """Class decorator: ``runner`` does the jobs of its ``kind``; one runner per kind."""
    if runner.kind in RUNNERS:
        raise ValueError(f"A runner for jobs of kind {runner.kind!r} is registered already.")
    RUNNERS[runner.kind] = runner()
    return runner


# --- Queueing -----------------------------------------------------------------------------


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


def jobs_send_on_commit(job_ids: Iterable[int], *, countdown: float = 0) -> None:
    """Send the jobs to a worker once the transaction that made them has committed."""
    ids = list(job_ids)
    transaction.on_commit(lambda: _send(ids, countdown=countdown))


def job_enqueue(job: Job, *, countdown: float = 0) -> None:
    """Mark the job sent now, and send it after commit."""
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
    jobs_send_on_commit([job.pk], countdown=countdown)


def job_create(
    *, kind: str, repository: Repository, actor: User | None, cause: str, countdown: float = 0
) -> Job:
    """A queued job for ``repository``, sent after commit."""
    job = Job.objects.create(
        kind=kind, repository=repository, gun=repository.gun, caused_by=actor, cause=cause[:255]
    )
    JobEvent.objects.create(job=job, status=JobEvent.Status.QUEUED, at=job.created_at)
    job_enqueue(job, countdown=countdown)
    return job


def jobs_queued_record(job_ids: Iterable[int]) -> None:
    """The "queued" step of jobs made in bulk (``Job.objects.bulk_create``), those of
    ``job_ids`` that have no history yet."""
    new = Job.objects.filter(pk__in=list(job_ids), events__isnull=True)
    JobEvent.objects.bulk_create(
        JobEvent(job_id=pk, status=JobEvent.Status.QUEUED, at=created_at)
        for pk, created_at in new.values_list("pk", "created_at")
    )


def jobs_requeue_stale(*, older_than: dt.timedelta | None = None) -> int:
    """Send again the jobs whose message may have been lost (a broker restarted empty), those
    sent more than ``older_than`` (``GATEHOUSE_JOB_REQUEUE_SECONDS``) ago.

    A duplicate is harmless: the repository lease and the status compare-and-set let only
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
        job_enqueue(job)
        JobEvent.objects.create(job=job, status=JobEvent.Status.REQUEUED, attempt=job.attempts)
        count += 1
    return count


# --- The lifecycle ------------------------------------------------------------------------


def claimed_repository_id(job: Job) -> int:
    """The repository of a job being claimed, run or released: ``job_run`` fails a job
    that has none before it claims anything, and ``_finish`` releases only one that has."""
    return cast(int, job.repository_id)


def _claim(job: Job) -> Job | None:
    """Lease the repository and start the job, in one transaction; None if either is taken.

    The claim is a lease, not a lock held open: it lasts the task's hard time limit
    (``GATEHOUSE_JOB_LEASE_SECONDS``), after which a redelivered job may take it.
    """
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.GATEHOUSE_JOB_LEASE_SECONDS)
    with transaction.atomic():
        claimed = (
            Repository.objects.filter(pk=claimed_repository_id(job))
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
        JobEvent.objects.create(
            job=job, status=JobEvent.Status.STARTED, at=now, attempt=claimed_job.attempts
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


def _release(job: Job, repository_fields: dict[str, Any] | None = None) -> None:
    """Give the repository back, writing ``repository_fields`` in the same UPDATE. A job whose
    lease ran out, so that another job holds the repository now, still writes them but
    leaves the other job's claim alone."""
    fields = repository_fields or {}
    released = Repository.objects.filter(pk=claimed_repository_id(job), lock_job=job).update(
        **fields, lock_job=None, lock_expires_at=None
    )
    if not released and fields:
        Repository.objects.filter(pk=claimed_repository_id(job)).update(**fields)


def _finish(
    job: Job,
    status: str,
    *,
    error: str = "",
    result: dict[str, Any] | None = None,
    repository_fields: dict[str, Any] | None = None,
) -> bool:
    """Unfinished -> finished, by compare-and-set, releasing the repository in the same
    transaction. The repository's row is written before the job's, in the order ``_claim``
    locks them, so two transactions never wait on each other's rows."""
    now = timezone.now()
    with transaction.atomic():
        if job.repository_id is not None:
            _release(job, repository_fields)
        finished = Job.objects.filter(
            pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
        ).update(status=status, error=error, result=result, finished_at=now)
        if finished:
            JobEvent.objects.create(
                job=job, status=status, at=now, attempt=job.attempts, detail=error
            )
            audit_record(
                action="job.finished",
                actor=None,
                target_type="job",
                target_id=job.pk,
                after={"kind": job.kind, "gun": job.gun, "status": status, "error": error},
            )
    return bool(finished)


def _backoff(attempts: int) -> float:
    return float(
        min(
            settings.GATEHOUSE_JOB_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0),
            settings.GATEHOUSE_JOB_BACKOFF_MAX_SECONDS,
        )
    )


def _fail(runner: JobRunner | None, job: Job, message: str) -> None:
    _finish(job, Job.Status.FAILED, error=message)
    if runner is not None:
        runner.failed(job)
    logger.warning("job %s %s on %s failed: %s", job.pk, job.kind, job.gun, message)


def _retry_or_fail(runner: JobRunner, job: Job, error: Exception) -> JobOutcome:
    limit = settings.GATEHOUSE_JOB_MAX_ATTEMPTS
    if job.attempts >= limit:
        _fail(
            runner,
            job,
            f"{runner.service} stayed unavailable after {job.attempts} attempts: {error}",
        )
        return DONE
    delay = _backoff(job.attempts)
    with transaction.atomic():  # the repository first, as everywhere (``_finish``)
        _release(job)
        message = (
            f"{runner.service} unavailable (attempt {job.attempts} of {limit}), "
            f"retrying in {delay:.0f} s: {error}"
        )
        retrying = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
            error=message, enqueued_at=timezone.now()
        )
        if retrying:
            JobEvent.objects.create(
                job=job, status=JobEvent.Status.RETRYING, attempt=job.attempts, detail=message
            )
    logger.warning(
        "job %s on %s: %s unavailable, retry in %.0f s", job.pk, job.gun, runner.service, delay
    )
    return JobOutcome(retry_in=delay)


def job_run(*, job_id: int) -> JobOutcome:
    """Run a job once, as its kind's runner says."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in Job.FINISHED:
        return DONE
    runner = RUNNERS.get(job.kind)
    if runner is None:
        _fail(None, job, f"No runner does jobs of kind {job.kind!r}.")
        return DONE
    if job.repository_id is None:
        _fail(None, job, "The repository no longer exists.")
        return DONE
    claimed = _claim(job)
    if claimed is None:
        job.refresh_from_db(fields=["status"])
        return DONE if job.status in Job.FINISHED else JobOutcome(retry_in=LOCK_RETRY_SECONDS)
    job = claimed
    try:
        outcome = runner.run(job)
    except runner.transient_errors as error:
        return _retry_or_fail(runner, job, error)
    except runner.permanent_errors as error:
        _fail(runner, job, str(error))
    except Exception:
        # A bug, not a failure the runner knows: fail the job for a person to see, never
        # retry it.
        logger.exception("job %s %s on %s crashed", job.pk, job.kind, job.gun)
        _fail(runner, job, INTERNAL_ERROR)
    else:
        _finish(
            job,
            Job.Status.SUCCEEDED,
            result=outcome.result,
            repository_fields=outcome.repository_fields,
        )
        logger.info("job %s %s on %s succeeded", job.pk, job.kind, job.gun)
    return DONE
