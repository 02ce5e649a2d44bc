"""Celery entry points: the scheduled sync."""

from celery import shared_task

from directory import services
from directory.models import SyncRun


@shared_task(name="directory.sync")
def sync() -> str:
    return services.directory_sync(trigger=SyncRun.Trigger.SCHEDULE).run.outcome
