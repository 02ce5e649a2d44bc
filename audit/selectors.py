"""Reading the audit log: admins only, newest first, filtered the same way by the console
and the API."""

import datetime as dt

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
