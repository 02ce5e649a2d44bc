"""``manage.py directory_sync [--dry-run]``: sync with LDAP now, from a shell or a cron job.
Exits 1 when the directory could not be read or the sync was refused, so a job runner sees
the failure."""

from argparse import ArgumentParser

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from directory import services
from directory.models import SyncRun
from directory.views import run_message


class Command(BaseCommand):
    help = "Read everyone from LDAP and make Gatehouse follow; print each change and the outcome."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would change; change nothing."
        )

    def handle(self, *args: object, dry_run: bool, **options: object) -> None:
        try:
            result = services.directory_sync(trigger=SyncRun.Trigger.MANUAL, dry_run=dry_run)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        for change in result.changes:
            self.stdout.write(str(change))
        message = run_message(result.run)
        if result.run.outcome in (SyncRun.Outcome.UNREACHABLE, SyncRun.Outcome.REFUSED):
            raise CommandError(message)
        self.stdout.write(message)
