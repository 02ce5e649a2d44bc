"""The Celery application: JSON only, late acknowledgement, bounded run time."""

import os
import sys
from pathlib import Path

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")

app = Celery("gatehouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=300,
    task_soft_time_limit=270,
    broker_connection_retry_on_startup=True,
)
# Celery's Django fix-up closes the database connections around every task unless this is
# set, and a new PostgreSQL session cost a job ≈ 6 ms (docs/performance.md, "Provisioning").
# Kept instead, and looked after around each task as Django does around each request (below).
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _connections_as_for_a_request(**kwargs: object) -> None:
    """Drop a connection that broke or outlived ``CONN_MAX_AGE``, and have the next use check
    a kept one (``CONN_HEALTH_CHECKS``), so a restarted PostgreSQL costs no job."""
    from django.db import close_old_connections

    close_old_connections()


def worker_command(
    *,
    concurrency: int = 2,
    loglevel: str = "INFO",
    queue: str | None = None,
    beat_schedule: Path | None = None,
    quiet: bool = False,
) -> list[str]:
    """How ``make run``, the tests and the benchmarks start a worker: ``concurrency``
    processes on ``queue`` (all the app's queues when None), with beat when given a schedule
    file; ``quiet`` leaves out the start-up banner."""
    command = [sys.executable, "-m", "celery", "-A", "gatehouse"]
    command += ["--quiet", "worker"] if quiet else ["worker"]
    command += ["-l", loglevel, "-c", str(concurrency)]
    if queue is not None:
        command += ["-Q", queue]
    if beat_schedule is not None:
        command += ["--beat", "--schedule", str(beat_schedule)]
    return command
