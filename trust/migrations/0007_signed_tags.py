"""Gatehouse remembers the tags signers have signed (``SignedTag``), to explain a tag whose
role is gone: a signer who left their team loses their role on the next sync."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0006_gun_grammar"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SignedTag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("gun", models.CharField(max_length=255)),
                ("role", models.CharField(max_length=255)),
                ("tag", models.CharField(max_length=255)),
                (
                    "digest",
                    models.CharField(
                        help_text="sha256:<hex> the role named for the tag.", max_length=80
                    ),
                ),
                (
                    "fingerprint",
                    models.CharField(help_text="SHA-256 of the role file's bytes.", max_length=64),
                ),
                ("first_seen_at", models.DateTimeField(auto_now_add=True)),
                ("last_seen_at", models.DateTimeField(auto_now=True)),
                (
                    "signer",
                    models.ForeignKey(
                        help_text="The owner of the role, whose key signed the file.",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["gun", "tag", "role"],
                "constraints": [
                    models.UniqueConstraint(fields=("gun", "role", "tag"), name="signed_tag_once")
                ],
            },
        ),
    ]
