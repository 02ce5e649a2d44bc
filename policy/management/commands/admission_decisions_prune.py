"""``manage.py admission_decisions_prune [--days N]``: forget old admission decisions."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from policy.services import admission_decisions_prune


class Command(BaseCommand):
    help = "Delete the recorded admission decisions older than --days (default 30)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args: object, **options) -> None:
        if options["days"] < 0:
            raise CommandError("--days cannot be negative.")
        deleted = admission_decisions_prune(older_than=dt.timedelta(days=options["days"]))
        self.stdout.write(f"Deleted {deleted} admission decisions.")
