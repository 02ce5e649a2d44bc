"""Celery entry points: ids in, one service call, nothing else."""

from celery import shared_task

from gatehouse.logging import job_context
from trust.services import drift, jobs


@shared_task(name=jobs.JOB_TASK, bind=True, max_retries=None, acks_late=True)
def run_job(self, job_id: int) -> None:
    with job_context(job_id):
        outcome = jobs.job_run(job_id=job_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(name="trust.check_drift")
def check_drift() -> int:
    return drift.drift_check_all()


@shared_task(name="trust.requeue_stale_jobs")
def requeue_stale_jobs() -> int:
    return jobs.jobs_requeue_stale()
