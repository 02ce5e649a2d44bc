"""Create the first admin unless an active one exists.

The username and password come from ``DJANGO_SUPERUSER_USERNAME`` and
``DJANGO_SUPERUSER_PASSWORD``; without a password one is generated and printed once.
"""

import os
import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create the first admin (from DJANGO_SUPERUSER_USERNAME/PASSWORD) if none exists."

    def handle(self, *args: object, **options: object) -> None:
        if User.objects.filter(is_admin=True, is_active=True).exists():
            self.stdout.write("An admin exists already; no admin created.")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or ""
        generated = not password
        if generated:
            password = secrets.token_urlsafe(15)
        try:
            user_create(actor=None, username=username, password=password, is_admin=True)
        except ValidationError as error:
            problems = "; ".join(
                f"{field}: {' '.join(m)}" for field, m in error.message_dict.items()
            )
            raise CommandError(f"Cannot create the admin '{username}': {problems}") from error
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin '{username}' with password: {password}\n"
                    "This is the only time it is shown; change it under My profile."
                )
            )
        else:
            self.stdout.write(f"Created admin '{username}'.")
