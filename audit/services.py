"""Writing the audit log. Every service that changes something calls ``audit_record``
inside its own transaction, so an entry exists exactly when the change does.

``audit_record`` never raises into its caller for a bad payload: values JSON cannot hold
are written as text, fields that look like secrets are dropped, and overlong names are cut.
A failure of the database itself does propagate, so no change goes unrecorded.
"""

import datetime as dt
import hashlib
import ipaddress
import json
import logging
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import CharField, F
from django.urls import reverse
from django.utils import timezone

from audit.middleware import current_address, current_user
from audit.models import AuditEntry, AuditFold

logger = logging.getLogger(__name__)

# Keys never kept in before/after, wherever they appear: the callers pass none of them, and
# this makes sure a slip cannot put a secret into the permanent record.
SECRET_KEYS = frozenset(
    {
        "password",
        "old_password",
        "new_password",
        "passphrase",
        "token",
        "access_token",
        "raw_token",
        "private_key",
        "targets_key",
        "key_pem",
        "sealed_private_key",
        "secret",
    }
)
MAX = {
    field: cast(CharField, AuditEntry._meta.get_field(field)).max_length
    for field in ("action", "target_type", "target_id", "actor_name")
}


def _clean(value: Any) -> Any:
    """A JSON-ready copy of ``value`` without secret-looking keys; never raises."""
    try:
        plain = json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError) as error:  # e.g. a circular structure
        logger.error("audit payload not recorded: %s", error)
        return {"unrecorded": "the payload could not be written as JSON"}
    return _without_secrets(plain)


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            str(key): _without_secrets(item)
            for key, item in value.items()
            if str(key).lower() not in SECRET_KEYS
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def _address() -> str | None:
    address = current_address()
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def audit_record(
    *,
    action: str,
    actor: Any,
    target_type: str,
    target_id: Any,
    before: Any = None,
    after: Any = None,
    actor_name: str = "",
) -> AuditEntry | None:
    """Record one change. ``actor`` is a user, or ``None`` for Gatehouse itself or an
    anonymous caller, whom ``actor_name`` may name (the account a failed login tried, when
    there is none); the client address comes from the current request, if any.

    For an update give both ``before`` and ``after``: only the fields that differ are kept,
    and an update that changed nothing records nothing (returns ``None``).
    """
    before, after = _clean(before), _clean(after)
    if isinstance(before, dict) and isinstance(after, dict):
        changed = [key for key in {**before, **after} if before.get(key) != after.get(key)]
        if not changed:
            return None
        before = {key: before[key] for key in changed if key in before}
        after = {key: after[key] for key in changed if key in after}
    user = actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=(user.get_username() if user is not None else str(actor_name))[
            : MAX["actor_name"]
        ],
        address=_address(),
        action=str(action)[: MAX["action"]],
        target_type=str(target_type)[: MAX["target_type"]],
        target_id=str(target_id)[: MAX["target_id"]],
        before=before,
        after=after,
    )


def audit_record_folded(
    *,
    action: str,
    actor: Any,
    target_type: str,
    target_id: Any,
    after: Any = None,
    window_seconds: int | None = None,
    distinct_limit: int | None = None,
) -> AuditEntry | None:
    """Record an event that callers can repeat at will (a denied evaluation), folding
    repeats so they cannot fill the log: within ``window_seconds`` of the first, an event
    identical to it (same action, actor, address, object and ``after``) adds one to that
    entry's ``AuditFold.occurrences`` instead of writing a new entry. Nothing is lost: each
    event is counted once, in one entry.

    Beyond ``distinct_limit`` distinct entries of the action from one actor and address in
    the window, every further event of theirs folds into one more entry, the first of them
    with ``overflow`` in ``after``: one caller writes at most ``distinct_limit + 1`` entries
    per window however it varies what it asks. ``0`` sets no limit. The defaults are
    ``GATEHOUSE_AUDIT_FOLD_SECONDS`` and ``GATEHOUSE_AUDIT_FOLD_DISTINCT``.

    Returns the new entry, or ``None`` when the event was folded into one. Each count is
    one ``UPDATE``; two identical first events at the same moment may write two entries,
    each counting its own.
    """
    window = settings.GATEHOUSE_AUDIT_FOLD_SECONDS if window_seconds is None else window_seconds
    limit = settings.GATEHOUSE_AUDIT_FOLD_DISTINCT if distinct_limit is None else distinct_limit
    user = actor if getattr(actor, "pk", None) and hasattr(actor, "get_username") else None
    cleaned = _clean(after)
    who = [str(action), user.pk if user is not None else None, _address()]
    key = _digest([*who, str(target_type), str(target_id), cleaned])
    group = _digest(who)
    now = timezone.now()
    since = now - dt.timedelta(seconds=window)
    if _fold(key=key, since=since, now=now):
        return None
    if limit and AuditFold.objects.filter(group=group, first_at__gte=since).count() >= limit:
        key = _digest([*who, "overflow"])
        if _fold(key=key, since=since, now=now):
            return None
        overflow = {"distinct_limit": limit, "window_seconds": window}
        cleaned = {**cleaned, "overflow": overflow} if isinstance(cleaned, dict) else cleaned
    with transaction.atomic():
        entry = audit_record(
            action=action, actor=user, target_type=target_type, target_id=target_id, after=cleaned
        )
        # Without ``before`` there is nothing to compare, so audit_record always writes one.
        entry = cast(AuditEntry, entry)
        AuditFold.objects.create(entry=entry, key=key, group=group, first_at=now, last_at=now)
    return entry


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _fold(*, key: str, since: dt.datetime, now: dt.datetime) -> bool:
    """Count one more occurrence in the newest entry of ``key`` since ``since``, if any."""
    latest = (
        AuditFold.objects.filter(key=key, first_at__gte=since)
        .order_by("-first_at", "-entry_id")
        .values_list("entry_id", flat=True)
        .first()
    )
    if latest is None:
        return False
    AuditFold.objects.filter(entry_id=latest).update(occurrences=F("occurrences") + 1, last_at=now)
    return True


def request_actor() -> Any:
    """The user of the request being served, for services that take no ``actor``."""
    return current_user()


# --- Django's auth signals: the console's logins ------------------------------------------


def _via(request: Any) -> str:
    path = getattr(request, "path", "")
    if not path:
        return "unknown"
    return "console" if path == reverse("login") else path


def _from_api(request: Any) -> bool:
    """The login API records its own attempts (``accounts.api.LoginView``)."""
    from rest_framework.request import Request

    return isinstance(request, Request)


def record_console_login(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is None or _from_api(request):
        return
    audit_record(
        action="login.succeeded",
        actor=user,
        target_type="user",
        target_id=user.get_username(),
        after={"via": _via(request)},
    )


def record_failed_login(
    sender: Any, credentials: dict | None = None, request: Any = None, **kwargs: Any
) -> None:
    if _from_api(request):
        return
    login_failure_record(username=str((credentials or {}).get("username") or ""), via=_via(request))


def login_failure_record(*, username: str, via: str) -> AuditEntry | None:
    """A failed login, attributed to the account that was tried: the one the login reaches
    (in any case), or, when no account has that name, the name as typed (``actor_name``
    without ``actor``)."""
    account = _account_named(username)
    name = account.get_username() if account is not None else username
    return audit_record(
        action="login.failed",
        actor=account,
        actor_name=name,
        target_type="user",
        target_id=name,
        after={"via": via},
    )


def _account_named(username: str) -> Any:
    """The user a login with ``username`` reaches, found as the login finds it, or ``None``.
    The audit log is below the accounts app, so it asks the configured user model."""
    users = get_user_model()._default_manager
    try:
        return users.get_by_natural_key(username)
    except users.model.DoesNotExist:
        return None
