"""GUNs follow Docker's reference grammar (``trust.notary.references``). Validators live
in Python only: nothing changes in the database, and existing rows stay as they are (a
short name such as ``app`` stays ``app``; README.md, "Upgrading to Docker's name grammar").
"""

from django.db import migrations, models

import trust.models


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0005_signing_role_to_bundles_job_progress"),
    ]

    operations = [
        migrations.AlterField(
            model_name="repository",
            name="gun",
            field=models.CharField(
                error_messages={"unique": "Gatehouse manages this GUN already."},
                max_length=255,
                unique=True,
                validators=[trust.models.gun_syntax],
            ),
        ),
    ]
