"""``manage.py root_key``: make Gatehouse's root key now, so it exists (and can be exported and
pinned) before the first repository; reading the root key never makes it."""

from django.core.management.base import BaseCommand

from trust.services.root_key import root_key_ensure


class Command(BaseCommand):
    help = "Create Gatehouse's root key if it does not exist, and print its key ID."

    def handle(self, *args: object, **options: object) -> None:
        key_id, created = root_key_ensure()
        if not created:
            self.stdout.write(f"Root key {key_id} exists already; nothing changed.")
            return
        self.stdout.write(
            f"Created root key {key_id}. Export it once (the console's Trust root page, or "
            "POST /api/v1/trust/root/export/) and keep it offline."
        )
