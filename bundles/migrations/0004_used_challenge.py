from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bundles", "0003_signing_role"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsedChallenge",
            fields=[
                (
                    "digest",
                    models.CharField(max_length=64, primary_key=True, serialize=False),
                ),
                ("expires_at", models.DateTimeField(db_index=True)),
            ],
        ),
    ]
