"""Create the client CA now (instead of at the first bundle) and print its certificate."""

from django.core.management.base import BaseCommand

from bundles.services import client_ca_ensure


class Command(BaseCommand):
    help = "Create Gatehouse's client CA if it does not exist, and print its certificate."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(client_ca_ensure().certificate, ending="")
