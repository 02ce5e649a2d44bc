"""Usernames become unique regardless of case.

The migration refuses, changing nothing, when existing usernames differ only in case: it
names them, and which accounts to keep is for an admin to decide. Rename all but one of
each group (for example ``UPDATE accounts_user SET username = 'jenkins-old' WHERE
username = 'Jenkins'``, after deactivating it if it should no longer log in) and migrate
again.
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower


def refuse_case_duplicates(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    duplicated = (
        User.objects.annotate(lowered=Lower("username"))
        .values("lowered")
        .annotate(accounts=Count("id"))
        .filter(accounts__gt=1)
        .values_list("lowered", flat=True)
    )
    groups: dict[str, list[str]] = {}
    for lowered, username in (
        User.objects.annotate(lowered=Lower("username"))
        .filter(lowered__in=list(duplicated))
        .order_by("lowered", "username")
        .values_list("lowered", "username")
    ):
        groups.setdefault(lowered, []).append(username)
    if groups:
        listed = "; ".join(", ".join(names) for names in groups.values())
        raise CommandError(
            "Usernames must be unique regardless of case, but these accounts differ only in "
            f"case: {listed}. Rename all but one of each group (e.g. with an UPDATE of "
            "accounts_user.username), then migrate again. Nothing was changed."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_login_guard"),
    ]

    operations = [
        migrations.RunPython(refuse_case_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                Lower("username"),
                name="user_username_lower_unique",
                violation_error_message="A user with that username already exists "
                "(usernames ignore case).",
            ),
        ),
    ]
