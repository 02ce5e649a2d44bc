from django.db import migrations, models
from django.db.models.functions import Lower


def failures_per_account(apps, schema_editor):
    """Failures count per account whatever the case typed: key the recent ones so."""
    LoginFailure = apps.get_model("accounts", "LoginFailure")
    LoginFailure.objects.update(username=Lower("username"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_login_failures"),
    ]

    operations = [
        migrations.CreateModel(
            name="LoginGuard",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=200, unique=True)),
                ("touched_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(failures_per_account, migrations.RunPython.noop),
    ]
