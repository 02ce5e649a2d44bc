"""``manage.py policy export [--output FILE]`` and ``manage.py policy apply FILE [--preview]
[--days N] [--actor USERNAME]``: the content-trust policy as a YAML file, to review and to
keep in a repository.

``export`` writes the document ``GET /api/v1/policy/`` gives, with its ``version``; ``apply``
takes what ``export`` writes. A file with a ``version`` applies only over that version, as a
``PUT`` with ``If-Match`` does, so an export edited by hand cannot undo a change made since;
a file without one applies over whatever the policy is, as a repository that owns the
policy wants. The change is Gatehouse's own in the audit log unless ``--actor`` names the
admin responsible.
"""

from pathlib import Path

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from audit.selectors import FieldChange, audit_changes
from policy.preview import Change
from policy.rules import Policy, policy_document, readable
from policy.selectors import (
    policy_current,
    policy_get,
    policy_of,
    policy_version,
    policy_version_diff,
)
from policy.services import (
    PREVIEW_DAYS,
    StaleVersion,
    policy_checked,
    policy_preview,
    policy_replace,
)


def _problems(error: ValidationError) -> str:
    """Each field's path and what is wrong with it, one a line."""
    return "\n".join(
        f"  {field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
    )


def _fields(count: int) -> str:
    return f"{count} field{'' if count == 1 else 's'}"


def _change_lines(changes: list[FieldChange]) -> list[str]:
    return [
        f"  {change.field}: {change.before or '(none)'} → {change.after or '(none)'}"
        for change in changes
    ]


def _image_lines(changes: tuple[Change, ...]) -> list[str]:
    return [
        f"  {change.image} in {change.namespace or '(no namespace)'}"
        f" ({change.source.replace('_', ' ')}, seen {change.occurrences} times):"
        f" {change.before} by rule {change.rule_before} → {change.after} by rule"
        f" {change.rule_after}" + (" (its trust data was never read)" if change.unread else "")
        for change in changes
    ]


class Command(BaseCommand):
    help = "Export the content-trust policy as YAML, or apply (or preview) a YAML policy."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="Write the policy as YAML.")
        export.add_argument("--output", help="The file to write (default: standard output).")
        apply = actions.add_parser("apply", help="Make a YAML policy the policy.")
        apply.add_argument("file", help="A YAML policy, as export writes it.")
        apply.add_argument(
            "--preview",
            action="store_true",
            help="Say what would change, fields and decisions, and save nothing.",
        )
        apply.add_argument(
            "--days",
            type=int,
            default=PREVIEW_DAYS,
            help=f"With --preview: the days of admission reviews to judge (default "
            f"{PREVIEW_DAYS}).",
        )
        apply.add_argument(
            "--actor",
            help="The admin the audit log names (default: Gatehouse itself).",
        )

    def handle(self, *args: object, **options) -> None:
        if options["action"] == "export":
            self.export(options["output"])
        else:
            self.apply(
                options["file"],
                preview=options["preview"],
                days=options["days"],
                actor=options["actor"],
            )

    def export(self, output: str | None) -> None:
        row = policy_get()
        text = (
            f"# Gatehouse content-trust policy, version {row.version}.\n"
            "# manage.py policy apply <file> applies it only over this version; delete the\n"
            "# version line to apply it over whatever the policy is then.\n"
            + yaml.safe_dump(
                {"version": row.version, **policy_document(policy_of(row))},
                sort_keys=False,
                allow_unicode=True,
            )
        )
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror}.") from error
        self.stdout.write(f"Wrote policy version {row.version} to {output}.")

    def apply(self, path: str, *, preview: bool, days: int, actor: str | None) -> None:
        document = self.read(path)
        version = document.get("version")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 0
        ):
            raise CommandError(
                f"{path} is not a policy to apply:\n  version: the version the file was "
                "exported at, a whole number; delete it to apply over any version."
            )
        user = self.actor(actor) if actor else None
        try:
            draft = policy_checked(document)
        except ValidationError as error:
            raise CommandError(f"{path} is not a policy to apply:\n{_problems(error)}") from error
        if preview:
            self.preview(draft, version=version, days=days)
            return
        try:
            row, changed = policy_replace(
                actor=user, policy=draft, expected_version=version, cause="policy apply"
            )
        except StaleVersion as error:
            raise CommandError(
                f"{path} was exported at version {error.expected}, but the policy is at "
                f"version {error.current} now: export it again and make your change there, "
                "or delete the version line to apply over it."
            ) from error
        if not changed:
            self.stdout.write(f"Nothing changed: policy version {row.version} is this already.")
            return
        saved = policy_version(row.version)
        diff = policy_version_diff(saved) if saved else []
        lines = [f"Policy version {row.version}: {_fields(len(changed))} changed."]
        self.stdout.write("\n".join(lines + _change_lines(diff)))

    def read(self, path: str) -> dict:
        """The file's YAML mapping, or a ``CommandError`` that says what is wrong."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"Cannot read {path}: it is not UTF-8 text.") from error
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise CommandError(f"{path} is not YAML: {error}") from error
        if not isinstance(document, dict):
            raise CommandError(
                f"{path} holds no policy: a YAML mapping of version, enabled, default and "
                "rules is expected, as export writes it."
            )
        return document

    def actor(self, username: str) -> User:
        user = User.objects.with_username(username).filter(is_active=True, is_admin=True).first()
        if user is None:
            raise CommandError(f"--actor: there is no active admin named {username}.")
        return user

    def preview(self, draft: Policy, *, version: int | None, days: int) -> None:
        try:
            result = policy_preview(draft=draft, days=days)
        except ValidationError as error:
            raise CommandError(f"--days: {' '.join(error.messages)}") from error
        current = policy_get().version
        lines = []
        if version is not None and version != current:
            lines.append(
                f"The file was exported at version {version}, but the policy is at version "
                f"{current}: applying it would be refused."
            )
        fields = audit_changes(readable(policy_current()), readable(draft))
        lines.append(
            f"{_fields(len(fields))} would change:" if fields else "No field would change."
        )
        lines += _change_lines(fields)
        lines.append(
            f"Judged by the last {days} days of admission reviews and the signed tags: "
            f"{result.subjects} images, seen {result.occurrences} times, {result.judged} of "
            f"them judged again; {result.newly_denied} of those times would now be denied, "
            f"{result.newly_allowed} now allowed."
        )
        for title, changes in (
            ("Newly denied", result.denied_changes),
            ("Newly allowed", result.allowed_changes),
        ):
            if changes:
                lines.append(f"{title}:")
                lines += _image_lines(changes)
        lines.append("Nothing was saved (--preview).")
        self.stdout.write("\n".join(lines))
