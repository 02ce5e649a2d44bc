"""The policy becomes a default rule plus ordered rules (one JSON document).

UCP's settings migrate as they are: ``mode`` and ``signing_teams`` become the default
rule (one member of each team), ``exempt_namespaces`` a rule ``exempt-namespaces`` of every
image in those namespaces, ``allow_repos`` a rule ``exempt-repositories`` of those image
patterns, both with mode ``off``. Every recorded version is converted the same way, so a
revert to one of them restores what it said.
"""

from django.db import migrations, models

from policy.models import default_document

NO_TEAMS = {"match": "all", "teams": []}


def document_of(settings: dict) -> dict:
    """The document equal to UCP's settings (a version without ``exempt_namespaces``
    had the default, ``kube-system``)."""
    rules = []
    namespaces = settings.get("exempt_namespaces", ["kube-system"])
    if namespaces:
        rules.append(
            {
                "name": "exempt-namespaces",
                "images": [],
                "namespaces": list(namespaces),
                "mode": "off",
                "require": NO_TEAMS,
            }
        )
    if settings.get("allow_repos"):
        rules.append(
            {
                "name": "exempt-repositories",
                "images": list(settings["allow_repos"]),
                "namespaces": [],
                "mode": "off",
                "require": NO_TEAMS,
            }
        )
    teams = [{"team": name, "count": 1} for name in settings.get("signing_teams", [])]
    return {
        "default": {
            "mode": settings.get("mode", "enforced"),
            "require": {"match": "all", "teams": teams},
        },
        "rules": rules,
    }


def forwards(apps, schema_editor):
    ContentTrustPolicy = apps.get_model("policy", "ContentTrustPolicy")
    PolicyVersion = apps.get_model("policy", "PolicyVersion")
    for row in ContentTrustPolicy.objects.all():
        row.document = document_of(
            {
                "mode": row.mode,
                "signing_teams": sorted(team.name for team in row.signing_teams.all()),
                "allow_repos": row.allow_repos,
                "exempt_namespaces": row.exempt_namespaces,
            }
        )
        row.save(update_fields=["document"])
    for version in PolicyVersion.objects.all():
        old = version.policy
        version.policy = {"enabled": bool(old.get("enabled")), **document_of(old)}
        version.save(update_fields=["policy"])


class Migration(migrations.Migration):
    dependencies = [
        ("policy", "0003_evaluation_inputs"),
    ]

    operations = [
        migrations.AddField(
            model_name="contenttrustpolicy",
            name="document",
            field=models.JSONField(
                default=default_document,
                help_text="The default rule and the rules (policy.rules).",
            ),
        ),
        migrations.AddField(
            model_name="admissiondecision",
            name="images",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveField(model_name="contenttrustpolicy", name="allow_repos"),
        migrations.RemoveField(model_name="contenttrustpolicy", name="exempt_namespaces"),
        migrations.RemoveField(model_name="contenttrustpolicy", name="mode"),
        migrations.RemoveField(model_name="contenttrustpolicy", name="signing_teams"),
        migrations.AlterField(
            model_name="policyversion",
            name="policy",
            field=models.JSONField(help_text="The policy document after this change."),
        ),
        migrations.AlterField(
            model_name="policyversion",
            name="changed",
            field=models.JSONField(default=list, help_text="The fields that changed, dotted."),
        ),
    ]
