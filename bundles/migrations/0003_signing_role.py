"""``SigningRole`` comes from ``trust``: the same rows, in a table renamed to this app's."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bundles", "0002_signing_roles"),
        ("trust", "0005_signing_role_to_bundles_job_progress"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SigningRole",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "name",
                            models.CharField(
                                max_length=64,
                                unique=True,
                                validators=[
                                    django.core.validators.RegexValidator(
                                        message=(
                                            "A role name is 1 to 64 lowercase letters, "
                                            "digits, '_' and '-'."
                                        ),
                                        regex="\\A[a-z0-9][a-z0-9_-]{0,63}\\Z",
                                    )
                                ],
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="signing_role",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "trust_signingrole"},
                )
            ],
        ),
        migrations.AlterModelTable(name="signingrole", table=None),
    ]
