"""``manage.py policy export`` and ``manage.py policy apply``: the policy as a YAML file."""

import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from audit.selectors import FieldChange, audit_changes
from policy.models import AdmissionDecision, PolicyVersion
from policy.rules import policy_document
from policy.selectors import policy_current, policy_get
from policy.services import policy_apply
from tests.factories import make_team
from tests.policy.documents import DOCUMENT, PROD

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(admin):
    make_team("ci", actor=admin)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("policy", *args, stdout=out)
    return out.getvalue()


def export(tmp_path, name: str = "policy.yaml"):
    path = tmp_path / name
    run("export", "--output", str(path))
    return path


def test_export_writes_the_document_with_its_version_and_apply_takes_it(admin, teams, tmp_path):
    policy_apply(actor=admin, document=DOCUMENT)
    path = export(tmp_path)
    text = path.read_text()
    assert text.startswith("# Gatehouse content-trust policy, version 1.")
    exported = yaml.safe_load(text)
    assert list(exported) == ["version", "enabled", "default", "rules"]
    assert exported == {"version": 1, **DOCUMENT}
    assert run("export") == text

    assert "Nothing changed" in run("apply", str(path))
    assert policy_get().version == 1

    policy_apply(actor=admin, document={**DOCUMENT, "enabled": False})
    without_version = tmp_path / "gitops.yaml"
    without_version.write_text(
        yaml.safe_dump({k: v for k, v in exported.items() if k != "version"})
    )
    output = run("apply", str(without_version))
    assert "Policy version 3: 1 field changed." in output
    assert "enabled: false → true" in output
    assert policy_document(policy_current()) == DOCUMENT


def test_an_exported_off_rule_applies_as_off_and_so_does_an_unquoted_off(admin, tmp_path):
    path = export(tmp_path)  # the new installation's kube-system exemption is off
    assert "mode: 'off'" in path.read_text()
    assert "Nothing changed" in run("apply", str(path))

    path.write_text(path.read_text().replace("mode: 'off'", "mode: off"))
    assert "Nothing changed" in run("apply", str(path))
    assert policy_current().rules[0].mode == "off"


def test_an_edited_export_applies_and_says_what_changed(admin, teams, tmp_path):
    policy_apply(actor=admin, document=DOCUMENT)
    path = export(tmp_path)
    path.write_text(path.read_text().replace("count: 1", "count: 2"))
    output = run("apply", str(path))
    assert output.splitlines() == [
        "Policy version 2: 1 field changed.",
        "  rules.prod.require: 1 of ci → 2 of ci",
    ]
    assert policy_current().rules[0].requirement.teams[0].count == 2


def test_a_file_exported_before_a_change_is_refused(admin, teams, tmp_path):
    policy_apply(actor=admin, document=DOCUMENT)
    path = export(tmp_path)
    policy_apply(actor=admin, document={**DOCUMENT, "enabled": False})
    with pytest.raises(
        CommandError, match=r"exported at version 1, but the policy is at version 2"
    ):
        run("apply", str(path))
    assert policy_get().version == 2
    assert policy_current().enabled is False


def test_apply_preview_says_what_would_change_and_saves_nothing(admin, teams, tmp_path):
    for number in range(3):
        AdmissionDecision.objects.create(
            uid=f"u-{number}",
            webhook="validate",
            namespace="shop",
            kind="Pod",
            name="web",
            operation="CREATE",
            allowed=True,
            images=[{"image": "registry.example.com/prod/web:1", "examined": False}],
        )
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(DOCUMENT))
    output = run("apply", str(path), "--preview", "--days", "3")
    assert "enabled: false → true" in output
    assert "rules.prod.require: (none) → 1 of ci" in output
    assert "3 of those times would now be denied, 0 now allowed." in output
    assert (
        "  registry.example.com/prod/web:1 in shop (admission, seen 3 times): not_enforced by "
        "rule default → denied by rule prod (its trust data was never read)"
    ) in output
    assert output.rstrip().endswith("Nothing was saved (--preview).")
    assert policy_get().version == 0
    assert not PolicyVersion.objects.exists()
    assert not AuditEntry.objects.filter(action="policy.updated").exists()

    with pytest.raises(CommandError, match="--days: A preview looks back 1 to 90 days"):
        run("apply", str(path), "--preview", "--days", "91")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [\n", "is not YAML"),
        ("- enabled\n", "holds no policy"),
        ("", "holds no policy"),
        ("version: one\n", "version: the version the file was exported at"),
        ("enabled: true\ndefault: {mode: enforced}\n", "rules: This field is required"),
        (
            yaml.safe_dump({**DOCUMENT, "rules": [{**PROD, "images": ["Upper/Case"]}]}),
            r"rules\[0\]\.images\[0\]: ",
        ),
        (
            yaml.safe_dump(
                {**DOCUMENT, "rules": [{**PROD, "require": {"teams": [{"team": "ghost"}]}}]}
            ),
            r"rules\[0\]\.require\.teams\[0\]\.team: Unknown team: ghost\.",
        ),
        (yaml.safe_dump({**DOCUMENT, "default": {"mode": "strict"}}), r"default\.mode: must be"),
    ],
)
def test_a_bad_file_is_a_clear_error_and_changes_nothing(admin, teams, tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for preview in ((), ("--preview",)):
        with pytest.raises(CommandError, match=message):
            run("apply", str(path), *preview)
    assert policy_get().version == 0


def test_a_missing_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match=r"Cannot read .*missing\.yaml"):
        run("apply", str(tmp_path / "missing.yaml"))


def test_the_audit_log_names_the_actor_or_gatehouse_itself(admin, alice, teams, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(DOCUMENT))
    with pytest.raises(CommandError, match="no active admin named alice"):
        run("apply", str(path), "--actor", "alice")
    run("apply", str(path), "--actor", "ROOT")
    path.write_text(yaml.safe_dump({**DOCUMENT, "enabled": False}))
    run("apply", str(path))

    by_admin, by_gatehouse = AuditEntry.objects.filter(action="policy.updated").order_by("id")
    assert by_admin.actor == admin
    assert by_gatehouse.actor is None
    assert by_gatehouse.actor_name == ""
    changes = audit_changes(by_gatehouse.before, by_gatehouse.after)
    assert FieldChange("enabled", "true", "false") in changes
    assert FieldChange("cause", None, "policy apply") in changes
    assert [(v.number, v.actor) for v in PolicyVersion.objects.order_by("number")] == [
        (1, admin),
        (2, None),
    ]
