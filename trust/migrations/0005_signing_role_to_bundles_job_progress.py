"""``SigningRole`` moves to ``bundles`` (its table with it, in ``bundles.0003``), and the
never-used progress counters of jobs go."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("trust", "0004_signing_roles")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SigningRole")],
        ),
        migrations.RemoveField(model_name="job", name="progress_done"),
        migrations.RemoveField(model_name="job", name="progress_total"),
    ]
