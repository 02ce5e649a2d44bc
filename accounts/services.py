"""Writes to identity. Every change of users, teams and membership goes through here.

Each function is keyword-only, runs in one transaction, validates with the model's own
rules and raises ``django.core.exceptions.ValidationError`` (field -> messages) on bad input.
"""

import datetime as dt
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from redis import RedisError

from accounts.metrics import LOGIN_FAILURES, LOGIN_LOCKOUTS
from accounts.models import ApiToken, LoginFailure, LoginGuard, Membership, Team, User
from accounts.signals import (
    identity_change_announce,
    team_delete_blockers,
    team_membership_owners,
    user_activity_changed,
)
from audit.services import audit_record
from gatehouse.addresses import address_group

logger = logging.getLogger(__name__)
_Checked = TypeVar("_Checked")


def _save_new(instance: User | Team, *, unique_field: str) -> None:
    """Validate and insert, turning a lost race on a unique field into a field error."""
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as error:
        raise ValidationError(
            {unique_field: [f"'{getattr(instance, unique_field)}' already exists."]}
        ) from error


def _check_password(password: str, *, user: User, field: str = "password") -> None:
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({field: error.messages}) from error


def _user_fields(user: User) -> dict:
    """What the audit log keeps of a user: never the password."""
    return {
        "full_name": user.full_name,
        "email": user.email,
        "is_admin": user.is_admin,
        "is_active": user.is_active,
    }


def _lock_admins(user: User) -> None:
    """Lock the rows of ``user`` and of every active admin, in primary-key order, then
    refresh ``user`` from its locked row. Run inside the transaction that changes ``user``.

    Two admins demoting or deactivating each other at once then run one after the other:
    the second counts the admins after the first has committed (PostgreSQL re-reads a row
    it waited for), so the last-admin guard holds. Everyone locks in the same order, so
    two such changes never deadlock.
    """
    locked = User.objects.select_for_update().filter(
        Q(pk=user.pk) | Q(is_admin=True, is_active=True)
    )
    for row in locked.order_by("pk"):
        if row.pk == user.pk:
            for field in User._meta.concrete_fields:
                setattr(user, field.attname, getattr(row, field.attname))


def _guard_last_admin(user: User, *, change: str) -> None:
    """Refuse to demote or deactivate the last active admin. ``_lock_admins`` first."""
    if not (user.is_admin and user.is_active):
        return
    if User.objects.filter(is_admin=True, is_active=True).exclude(pk=user.pk).exists():
        return
    raise ValidationError(
        {
            "is_admin" if change == "demote" else "is_active": [
                f"'{user.username}' is the last active admin and cannot be {change}d."
            ]
        }
    )


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    full_name: str = "",
    email: str = "",
    is_admin: bool = False,
    actor_name: str = "",
) -> User:
    """``password=None`` makes an account that cannot log in with a password of Gatehouse's:
    one whose identity the directory checks (``directory.services``)."""
    user = User(username=username, full_name=full_name, email=email, is_admin=is_admin)
    existing = User.objects.with_username(username).values_list("username", flat=True).first()
    if existing is not None:
        raise ValidationError(
            {
                "username": [
                    "A user with that username already exists."
                    if existing == username
                    else f"A user with that username already exists: '{existing}' "
                    "(usernames ignore case)."
                ]
            }
        )
    if password is None:
        user.set_unusable_password()
    else:
        _check_password(password, user=user)
        user.set_password(password)
    _save_new(user, unique_field="username")
    audit_record(
        action="user.created",
        actor=actor,
        actor_name=actor_name,
        target_type="user",
        target_id=user.username,
        after=_user_fields(user),
    )
    logger.info("user %s created by %s", user.username, actor or actor_name or "system")
    return user


@transaction.atomic
def user_update(
    *,
    actor: User | None,
    user: User,
    full_name: str | None = None,
    email: str | None = None,
    is_admin: bool | None = None,
    actor_name: str = "",
) -> User:
    _lock_admins(user)
    if is_admin is False:
        _guard_last_admin(user, change="demote")
    before = _user_fields(user)
    for field, value in (("full_name", full_name), ("email", email), ("is_admin", is_admin)):
        if value is not None:
            setattr(user, field, value)
    user.full_clean()
    user.save(update_fields=["full_name", "email", "is_admin"])
    audit_record(
        action="user.updated",
        actor=actor,
        actor_name=actor_name,
        target_type="user",
        target_id=user.username,
        before=before,
        after=_user_fields(user),
    )
    logger.info("user %s updated by %s", user.username, actor or actor_name)
    return user


@transaction.atomic
def user_deactivate(*, actor: User | None, user: User, actor_name: str = "") -> User:
    """Deactivate instead of deleting: memberships, keys and history stay for the record.
    ``actor=None`` with an ``actor_name``: Gatehouse does it for that source (the directory)."""
    if actor is not None and user.pk == actor.pk:
        raise ValidationError({"is_active": ["You cannot deactivate your own account."]})
    _lock_admins(user)
    _guard_last_admin(user, change="deactivate")
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        api_tokens_revoke(user=user)
        identity_change_announce(actor=actor, cause=f"{user.username} deactivated", users=[user])
        user_activity_changed.send(sender=User, user=user, active=False, actor_name=actor_name)
        audit_record(
            action="user.deactivated",
            actor=actor,
            actor_name=actor_name,
            target_type="user",
            target_id=user.username,
            before={"is_active": True},
            after={"is_active": False},
        )
        logger.info("user %s deactivated by %s", user.username, actor or actor_name)
    return user


@transaction.atomic
def user_reactivate(*, actor: User | None, user: User, actor_name: str = "") -> User:
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
        identity_change_announce(actor=actor, cause=f"{user.username} reactivated", users=[user])
        user_activity_changed.send(sender=User, user=user, active=True, actor_name=actor_name)
        audit_record(
            action="user.reactivated",
            actor=actor,
            actor_name=actor_name,
            target_type="user",
            target_id=user.username,
            before={"is_active": False},
            after={"is_active": True},
        )
        logger.info("user %s reactivated by %s", user.username, actor or actor_name)
    return user


def user_password_change(
    *,
    actor: User,
    user: User,
    new_password: str,
    old_password: str | None = None,
    keep_token: ApiToken | None = None,
    address: str = "",
) -> User:
    """Change a password; a user changing their own must prove the old one, which counts
    as a login (``password_check``): a wrong one is a failed login of the account, audited
    (``login.failed``, via ``password_change``), and a locked out account or address, or
    one past its password checks, is refused (``LoginLocked``, ``LoginThrottled``).

    Every other API token of the user is revoked, so a leaked token dies with the old
    password; ``keep_token`` is the one the caller is using right now.

    Refused for an account whose password Gatehouse does not hold (a directory user's): a
    password set here would let them in without the directory.
    """
    if not user.has_usable_password():
        raise ValidationError(
            {
                "new_password": [
                    f"The directory checks the password of {user.username}; "
                    "change it there, not in Gatehouse."
                ]
            }
        )
    # Outside the transaction below, so a failure and its audit stay.
    if actor.pk == user.pk and not password_check(
        username=user.username,
        address=address,
        check=lambda: user.check_password(old_password or ""),
    ):
        audit_record(
            action="login.failed",
            actor=actor,
            target_type="user",
            target_id=user.username,
            after={"via": "password_change"},
        )
        raise ValidationError({"old_password": ["The current password is not correct."]})
    _check_password(new_password, user=user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoked = api_tokens_revoke(user=user, keep=keep_token)
        audit_record(
            action="user.password_changed",
            actor=actor,
            target_type="user",
            target_id=user.username,
            after={"tokens_revoked": revoked},
        )
    logger.info("password of %s changed by %s", user.username, actor)
    return user


@transaction.atomic
def user_unlock(*, actor: User, user: User) -> bool:
    """Lift the lockout of ``user``'s account by forgetting its failed logins (an address
    locked out stays so). Audited (``user.unlocked``) when the account was locked; returns
    whether it was."""
    failures = LoginFailure.objects.filter(username=login_account_key(user.username))
    locked_until = lockout_end(
        failures.filter(at__gte=_lockout_window()), limit=settings.GATEHOUSE_LOGIN_MAX_FAILURES
    )
    cleared, _ = failures.delete()
    if locked_until is None:
        return False
    audit_record(
        action="user.unlocked",
        actor=actor,
        target_type="user",
        target_id=user.username,
        before={"locked_until": locked_until},
        after={"failures_cleared": cleared},
    )
    logger.info("user %s unlocked by %s", user.username, actor)
    return True


@transaction.atomic
def team_create(*, actor: User, name: str, description: str = "") -> Team:
    team = Team(name=name, description=description)
    _save_new(team, unique_field="name")
    audit_record(
        action="team.created",
        actor=actor,
        target_type="team",
        target_id=team.name,
        after={"description": team.description},
    )
    logger.info("team %s created by %s", team.name, actor)
    return team


@transaction.atomic
def team_update(*, actor: User, team: Team, description: str | None = None) -> Team:
    before = {"description": team.description}
    if description is not None:
        team.description = description
    team.full_clean()
    team.save()
    audit_record(
        action="team.updated",
        actor=actor,
        target_type="team",
        target_id=team.name,
        before=before,
        after={"description": team.description},
    )
    logger.info("team %s updated by %s", team.name, actor)
    return team


class TeamInUse(ValidationError):
    """The team cannot be deleted: the policy or a repository still names it.

    ``used_by`` names each thing that uses it (``accounts.signals.team_delete_blockers``);
    ``detail`` is the whole message, also the ``name`` field's error.
    """

    def __init__(self, *, team: Team, used_by: list[str]) -> None:
        self.used_by = used_by
        self.detail = f"Team {team.name} is in use by {', '.join(used_by)}; remove it there first."
        super().__init__({"name": [self.detail]})


@transaction.atomic
def team_delete(*, actor: User, team: Team) -> None:
    """Refused (``TeamInUse``, nothing changed) while anything names the team: deleting it
    would drop its M2M rows silently, e.g. a signing team the policy requires.

    The team's row is locked first, so nothing can name it between the check and the
    delete. ``identity_changed`` is still sent, so evaluations read teams afresh.
    """
    Team.objects.select_for_update().filter(pk=team.pk).first()
    # Each answer is the receiver's list of strings (django-stubs types it as ``str | None``).
    used_by = [
        blocker
        for _, blockers in team_delete_blockers.send(sender=Team, team=team)
        for blocker in cast(list[str], blockers)
    ]
    if used_by:
        raise TeamInUse(team=team, used_by=used_by)
    name = team.name
    identity_change_announce(actor=actor, cause=f"team {name} deleted", teams=[team])
    audit_record(
        action="team.deleted",
        actor=actor,
        target_type="team",
        target_id=name,
        before={
            "description": team.description,
            "members": sorted(team.members.values_list("username", flat=True)),
        },
    )
    team.delete()
    logger.info("team %s deleted by %s", name, actor)


class MembershipOwned(ValidationError):
    """The team's membership belongs to something else (the directory), which changes it
    with ``team_membership_sync``; ``detail`` says what owns it, and is the ``members``
    field's error."""

    def __init__(self, *, team: Team, owners: list[str]) -> None:
        self.owners = owners
        self.detail = (
            f"The members of {team.name} come from {', '.join(owners)}; "
            "change them there, not by hand."
        )
        super().__init__({"members": [self.detail]})


def _refuse_if_owned(team: Team) -> None:
    owners = team_membership_owners(team)
    if owners:
        raise MembershipOwned(team=team, owners=owners)


@transaction.atomic
def team_member_add(*, actor: User, team: Team, user: User) -> tuple[Membership, bool]:
    """Add ``user`` to ``team``; returns the membership and whether it is new. Refused
    (``MembershipOwned``) for a team whose membership the directory owns."""
    # The team's row, as ``group_mapping_create`` locks it: no mapping appears meanwhile.
    Team.objects.select_for_update().filter(pk=team.pk).first()
    _refuse_if_owned(team)
    if not user.is_active:
        raise ValidationError({"username": [f"'{user.username}' is deactivated."]})
    membership, created = Membership.objects.get_or_create(team=team, user=user)
    if created:
        identity_change_announce(
            actor=actor, cause=f"{user.username} joined {team.name}", teams=[team]
        )
        audit_record(
            action="membership.added",
            actor=actor,
            target_type="team",
            target_id=team.name,
            after={"member": user.username},
        )
        logger.info("%s added to team %s by %s", user.username, team.name, actor)
    return membership, created


@transaction.atomic
def team_member_remove(*, actor: User, team: Team, user: User) -> bool:
    """Remove ``user`` from ``team``; returns whether they were a member. Refused
    (``MembershipOwned``) for a team whose membership the directory owns."""
    Team.objects.select_for_update().filter(pk=team.pk).first()
    _refuse_if_owned(team)
    deleted, _ = Membership.objects.filter(team=team, user=user).delete()
    if deleted:
        identity_change_announce(
            actor=actor, cause=f"{user.username} left {team.name}", teams=[team]
        )
        audit_record(
            action="membership.removed",
            actor=actor,
            target_type="team",
            target_id=team.name,
            before={"member": user.username},
        )
        logger.info("%s removed from team %s by %s", user.username, team.name, actor)
    return bool(deleted)


@transaction.atomic
def team_membership_sync(
    *, team: Team, add: list[User], remove: list[User], actor_name: str
) -> tuple[int, int]:
    """Make the owner's changes to ``team``'s membership (``membership_owners``): add the
    active users of ``add``, remove those of ``remove``; each change audited as made by
    ``actor_name``, one identity change for all. Returns how many joined and left."""
    joined = [
        user
        for user in add
        if user.is_active and Membership.objects.get_or_create(team=team, user=user)[1]
    ]
    left = [user for user in remove if Membership.objects.filter(team=team, user=user).delete()[0]]
    if not (joined or left):
        return 0, 0
    names = [f"{user.username} joined" for user in joined] + [
        f"{user.username} left" for user in left
    ]
    identity_change_announce(
        actor=None, cause=f"{actor_name} changed {team.name}: {', '.join(names)}", teams=[team]
    )
    for action, key, users in (
        ("membership.added", "after", joined),
        ("membership.removed", "before", left),
    ):
        for user in users:
            audit_record(
                action=action,
                actor=None,
                actor_name=actor_name,
                target_type="team",
                target_id=team.name,
                **{key: {"member": user.username}},
            )
    logger.info(
        "team %s: %d joined and %d left, by %s", team.name, len(joined), len(left), actor_name
    )
    return len(joined), len(left)


def api_token_digest(raw_token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


class TooManyTokens(Exception):
    """The user created more API tokens in the last hour than allowed."""


@transaction.atomic
def api_token_create(*, user: User) -> tuple[str, ApiToken]:
    """Issue a bearer token; the raw value is returned once and never stored.

    At most ``GATEHOUSE_TOKENS_PER_HOUR`` per user, so a stolen password cannot mint
    tokens without end.
    """
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    if ApiToken.objects.filter(user=user, created_at__gte=hour_ago).count() >= (
        settings.GATEHOUSE_TOKENS_PER_HOUR
    ):
        raise TooManyTokens(f"{user.username} created too many API tokens in the last hour.")
    raw_token = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        digest=api_token_digest(raw_token),
        expires_at=timezone.now() + settings.GATEHOUSE_TOKEN_TTL,
    )
    logger.info("API token %s issued to %s", token.pk, user.username)
    return raw_token, token


# --- Logins: lockouts and the per-address limit ------------------------------------------


def _lockout_window() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)


def login_account_key(username: str) -> str:
    """What failures count against: the account, whatever the case it is typed in."""
    return username.lower()[:150]


def _attempted_account(username: str) -> str | None:
    """The username of the account a login will reach, found as the login finds it (the
    database's lowering), so a spelling that lowers differently in Python (``alİce``) is
    ``alice``; ``None`` for a name no account has."""
    return User.objects.with_username(username).values_list("username", flat=True).first()


def lockout_end(failures: QuerySet[LoginFailure], *, limit: int) -> dt.datetime | None:
    """When the lockout made by ``failures`` (one account's or address's recent failures)
    lifts: when the ``limit``-th most recent leaves the window. ``None``: not locked."""
    limit = max(1, limit)
    ats = list(failures.order_by("-at").values_list("at", flat=True)[limit - 1 : limit])
    if not ats:
        return None
    return ats[0] + dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)


class LoginRefused(Exception):
    """A login (or a password change) refused before any password was checked; it may be
    tried again in ``retry_after`` seconds. The message says when."""

    MESSAGE = "Login refused."

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"{self.MESSAGE} {self.wait_text()}")

    def wait_text(self) -> str:
        return f"Try again in {self.retry_after} s."


class LoginUnavailable(LoginRefused):
    """The password could not be checked: the directory that holds it cannot be reached.
    Not a failed login: nothing is counted against the account."""

    MESSAGE = "The directory cannot be reached to check the password."


class LoginLocked(LoginRefused):
    """The account or the address failed too often in the lockout window
    (``GATEHOUSE_LOGIN_MAX_FAILURES``, ``..._PER_ADDRESS``, ``..._LOCKOUT_SECONDS``)."""

    MESSAGE = "Too many failed logins for this account or address."

    def wait_text(self) -> str:
        minutes = math.ceil(self.retry_after / 60)
        return f"Try again in {minutes} minute{'' if minutes == 1 else 's'}."


class LoginThrottled(LoginRefused):
    """The address asked for more password checks this minute than allowed."""

    MESSAGE = "Too many login attempts from this address."


@dataclass(frozen=True)
class LoginAttempt:
    """A password check reserved by ``login_attempt_begin``: its ``LoginFailure`` row counts
    as a failure until ``login_attempt_succeeded``."""

    failure_id: int
    account: str  # the failure key: login_account_key of the account's username, or as typed
    target: str  # what a lockout names: the account's username, else ``account``
    address: str  # address_group(address)
    locks_account: bool  # failing, this attempt reaches the account's limit
    locks_address: bool  # ... or the address's


def login_attempt_begin(*, username: str, address: str) -> LoginAttempt:
    """Reserve a password check for ``username`` from ``address``, or raise ``LoginLocked``
    (with when to try again) when either has too many recent failures.

    In one transaction: lock the account's and the address's ``LoginGuard`` rows (an
    upsert, so a row that does not exist yet is made and locked alike; in key order, so
    attempts never deadlock), count their failures in the window and write this attempt's
    ``LoginFailure``. Of any number of attempts at once, at most the limit get past it: the
    others wait for the lock and then count the reservations of those before them. The
    address is its /64 for IPv6 (``gatehouse.addresses.address_group``).
    """
    found = _attempted_account(username)
    account, address = login_account_key(found or username), address_group(address)
    scopes = [("user", account, settings.GATEHOUSE_LOGIN_MAX_FAILURES, Q(username=account))]
    if address:
        scopes.append(
            (
                "address",
                address,
                settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS,
                Q(address=address),
            )
        )
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)
    counts: dict[str, int] = {}
    with transaction.atomic():
        for key in sorted(f"{scope}:{name}" for scope, name, _, _ in scopes):
            LoginGuard.objects.bulk_create(
                [LoginGuard(key=key, touched_at=now)],
                update_conflicts=True,
                unique_fields=["key"],
                update_fields=["touched_at"],
            )
        ends = []
        for scope, _, limit, match in scopes:
            LoginFailure.objects.filter(match, at__lt=cutoff).delete()  # out of the window
            recent = LoginFailure.objects.filter(match, at__gte=cutoff)
            counts[scope] = recent.count()
            if counts[scope] >= limit:
                ends.append(lockout_end(recent, limit=limit) or now)
        if ends:
            raise LoginLocked(retry_after=math.ceil((max(ends) - now).total_seconds()))
        failure = LoginFailure.objects.create(username=account, address=address)
    return LoginAttempt(
        failure_id=failure.pk,
        account=account,
        target=found or account,
        address=address,
        locks_account=counts["user"] + 1 == settings.GATEHOUSE_LOGIN_MAX_FAILURES,
        locks_address=bool(address)
        and counts["address"] + 1 == settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS,
    )


def login_attempt_failed(attempt: LoginAttempt) -> None:
    """The password was wrong: the reserved failure stays. The failure that reaches a
    limit locks the account or the address out, and that is audited."""
    for scope, locks, limit in (
        ("user", attempt.locks_account, settings.GATEHOUSE_LOGIN_MAX_FAILURES),
        ("address", attempt.locks_address, settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ):
        if not locks:
            continue
        LOGIN_LOCKOUTS.labels(scope=scope).inc()
        target = attempt.target if scope == "user" else attempt.address
        audit_record(
            action="login.locked_out",
            actor=None,
            target_type=scope,
            target_id=target,
            after={"failures": limit, "seconds": settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS},
        )
        logger.warning("login locked out for %s %s", scope, target)


def login_attempt_succeeded(attempt: LoginAttempt) -> None:
    """The password was right: the reservation goes, and with it the account's failures
    from before it (not those of attempts that began later)."""
    LoginFailure.objects.filter(username=attempt.account, pk__lte=attempt.failure_id).delete()


def login_attempt_cancel(attempt: LoginAttempt) -> None:
    """No password was checked after all: the reservation goes."""
    LoginFailure.objects.filter(pk=attempt.failure_id).delete()


def password_check(*, username: str, address: str, check: Callable[[], _Checked]) -> _Checked:
    """Run ``check``, which checks a password of ``username`` (truthy when right), as one
    counted attempt: ``LoginLocked`` when the account or the address is locked out,
    ``LoginThrottled`` past the per-address limit of password checks (``password_check_admit``);
    otherwise a wrong password is a failure, and a right one clears the account's failures.
    Every path that checks a password goes through here; run it outside any transaction,
    so the failure it records stays when the caller's work is undone."""
    attempt = login_attempt_begin(username=username, address=address)
    try:
        password_check_admit(address=address)
    except LoginThrottled:
        login_attempt_cancel(attempt)
        raise
    try:
        result = check()
    except LoginUnavailable:
        login_attempt_cancel(attempt)
        raise
    if result:
        login_attempt_succeeded(attempt)
    else:
        LOGIN_FAILURES.inc()
        login_attempt_failed(attempt)
    return result


def password_check_admit(*, address: str) -> None:
    """Count a password check from ``address`` in the current minute; past
    ``GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE`` raise ``LoginThrottled``, right password or not.

    Each check is a deliberately slow hash (about 0.3 s of CPU), so a client asking without
    limit would take the web processes' CPU from everyone. An IPv6 client counts by its /64.
    The first refusal of a minute is audited. The counts live in Django's cache
    (``GATEHOUSE_CACHE_URL``); while that cannot be reached, checks are let through (the
    lockouts, in the database, still hold) rather than every login failing.
    """
    address = address_group(address)
    if not address:
        return
    now = time.time()
    key = f"gatehouse:password-checks:{address}:{int(now // 60)}"
    try:
        count = _cache_count(key)
    except (RedisError, OSError) as error:
        logger.warning("password checks not counted: the cache is unreachable (%s)", error)
        return
    limit = settings.GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE
    if count <= limit:
        return
    if count == limit + 1:
        logger.warning("password checks from %s throttled (%d a minute)", address, limit)
        audit_record(
            action="login.throttled",
            actor=None,
            target_type="address",
            target_id=address,
            after={"limit_per_minute": limit},
        )
    raise LoginThrottled(retry_after=max(1, 60 - int(now % 60)))


def _cache_count(key: str) -> int:
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        return 1


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_tokens_revoke(*, user: User, keep: ApiToken | None = None) -> int:
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    return tokens.update(revoked_at=timezone.now())
