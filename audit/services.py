"""Writing the audit log. Every service that changes something calls ``audit_record``
inside its own transaction, so an entry exists exactly when the change does.

``audit_record`` never raises into its caller for a bad payload: values JSON cannot hold
are written as text, fields that look like secrets are dropped, and overlong names are cut.
A failure of the database itself does propagate, so no change goes unrecorded.
"""

import ipaddress
import json
import logging
from typing import Any

from django.urls import reverse

from audit.middleware import current_address, current_user
from audit.models import AuditEntry

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
    field: AuditEntry._meta.get_field(field).max_length
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
) -> AuditEntry | None:
    """Record one change. ``actor`` is a user, or ``None`` for Gatehouse itself or an
    anonymous caller; the client address comes from the current request, if any.

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
        actor_name=(user.get_username() if user is not None else "")[: MAX["actor_name"]],
        address=_address(),
        action=str(action)[: MAX["action"]],
        target_type=str(target_type)[: MAX["target_type"]],
        target_id=str(target_id)[: MAX["target_id"]],
        before=before,
        after=after,
    )


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
    username = str((credentials or {}).get("username") or "")
    audit_record(
        action="login.failed",
        actor=None,
        target_type="user",
        target_id=username,
        after={"via": _via(request)},
    )
