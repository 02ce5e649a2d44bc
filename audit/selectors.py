"""Reading the audit log: admins only, newest first, filtered the same way by the console
and the API."""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_entries(*, viewer) -> QuerySet[AuditEntry]:
    """Every entry for an admin, none for anyone else."""
    if not (viewer.is_authenticated and viewer.is_admin):
        return AuditEntry.objects.none()
    return AuditEntry.objects.select_related("fold").order_by("-created_at", "-id")


def audit_filter(
    entries: QuerySet[AuditEntry],
    *,
    actor: str = "",
    action: str = "",
    target_type: str = "",
    target_id: str = "",
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> QuerySet[AuditEntry]:
    """``actor`` is a username (exact, any case), ``action`` a prefix (``membership.``),
    ``since``/``until`` inclusive: a date means that whole day."""
    if actor:
        entries = entries.filter(actor_name__iexact=actor)
    if action:
        entries = entries.filter(action__startswith=action)
    if target_type:
        entries = entries.filter(target_type=target_type)
    if target_id:
        entries = entries.filter(target_id=target_id)
    if since is not None:
        if isinstance(since, dt.datetime):
            entries = entries.filter(created_at__gte=since)
        else:
            entries = entries.filter(created_at__date__gte=since)
    if until is not None:
        if isinstance(until, dt.datetime):
            entries = entries.filter(created_at__lte=until)
        else:
            entries = entries.filter(created_at__date__lte=until)
    return entries


@dataclass(frozen=True)
class FieldChange:
    """One row of an entry's diff: ``before`` is ``None`` for a field that was added,
    ``after`` for one that was removed."""

    field: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> Literal["added", "removed", "changed"]:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed"


WHOLE_VALUE = "value"  # the field a before/after that is not an object is shown under


def audit_changes(before: Any, after: Any) -> list[FieldChange]:
    """An entry's ``before`` and ``after`` as one row per field that differs, in the order
    they were recorded: a field only ``after`` has was added (a creation adds every field),
    one only ``before`` has was removed. Nested objects are compared field by field
    (``overflow.window_seconds``); a value is shown as it is when a string, else as JSON."""
    old, new = _fields(before), _fields(after)
    return [
        FieldChange(
            field=field,
            before=_shown(old[field]) if field in old else None,
            after=_shown(new[field]) if field in new else None,
        )
        for field in {**old, **new}
        if field not in old or field not in new or old[field] != new[field]
    ]


def _fields(value: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of ``value`` by dotted field name; none for ``None``."""
    if value is None and not prefix:
        return {}
    if isinstance(value, dict) and (value or not prefix):
        fields: dict[str, Any] = {}
        for key, item in value.items():
            fields.update(_fields(item, f"{prefix}.{key}" if prefix else str(key)))
        return fields
    return {prefix or WHOLE_VALUE: value}


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
