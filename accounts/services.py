"""Writes to identity. Every change of users, teams and membership goes through here.

Each function is keyword-only, runs in one transaction, validates with the model's own
rules and raises ``django.core.exceptions.ValidationError`` (field -> messages) on bad input.
"""

import datetime as dt
import hashlib
import logging
import secrets
import time

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis import RedisError

from accounts.models import ApiToken, LoginFailure, Membership, Team, User
from accounts.signals import identity_change_announce, team_delete_blockers
from audit.services import audit_record
from gatehouse.addresses import address_group

logger = logging.getLogger(__name__)


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


def _active_admin_count() -> int:
    return User.objects.filter(is_admin=True, is_active=True).count()


def _guard_last_admin(user: User, *, change: str) -> None:
    if user.is_admin and user.is_active and _active_admin_count() <= 1:
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
    password: str,
    full_name: str = "",
    email: str = "",
    is_admin: bool = False,
) -> User:
    user = User(username=username, full_name=full_name, email=email, is_admin=is_admin)
    _check_password(password, user=user)
    user.set_password(password)
    _save_new(user, unique_field="username")
    audit_record(
        action="user.created",
        actor=actor,
        target_type="user",
        target_id=user.username,
        after=_user_fields(user),
    )
    logger.info("user %s created by %s", user.username, actor or "system")
    return user


@transaction.atomic
def user_update(
    *,
    actor: User,
    user: User,
    full_name: str | None = None,
    email: str | None = None,
    is_admin: bool | None = None,
) -> User:
    if is_admin is False:
        _guard_last_admin(user, change="demote")
    before = _user_fields(user)
    for field, value in (("full_name", full_name), ("email", email), ("is_admin", is_admin)):
        if value is not None:
            setattr(user, field, value)
    user.full_clean()
    user.save()
    audit_record(
        action="user.updated",
        actor=actor,
        target_type="user",
        target_id=user.username,
        before=before,
        after=_user_fields(user),
    )
    logger.info("user %s updated by %s", user.username, actor)
    return user


@transaction.atomic
def user_deactivate(*, actor: User, user: User) -> User:
    """Deactivate instead of deleting: memberships, keys and history stay for the record."""
    if user.pk == actor.pk:
        raise ValidationError({"is_active": ["You cannot deactivate your own account."]})
    _guard_last_admin(user, change="deactivate")
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        api_tokens_revoke(user=user)
        identity_change_announce(actor=actor, cause=f"{user.username} deactivated", users=[user])
        audit_record(
            action="user.deactivated",
            actor=actor,
            target_type="user",
            target_id=user.username,
            before={"is_active": True},
            after={"is_active": False},
        )
        logger.info("user %s deactivated by %s", user.username, actor)
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User) -> User:
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
        identity_change_announce(actor=actor, cause=f"{user.username} reactivated", users=[user])
        audit_record(
            action="user.reactivated",
            actor=actor,
            target_type="user",
            target_id=user.username,
            before={"is_active": False},
            after={"is_active": True},
        )
        logger.info("user %s reactivated by %s", user.username, actor)
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
    """Change a password; a user changing their own must prove the old one, a password
    check counted like a login's (``password_check_admit``: ``LoginThrottled``).

    Every other API token of the user is revoked, so a leaked token dies with the old
    password; ``keep_token`` is the one the caller is using right now.
    """
    if actor.pk == user.pk:
        password_check_admit(address=address)  # outside the transaction: its audit stays
        if not user.check_password(old_password or ""):
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
    used_by = [
        blocker
        for _, blockers in team_delete_blockers.send(sender=Team, team=team)
        for blocker in blockers
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


@transaction.atomic
def team_member_add(*, actor: User, team: Team, user: User) -> tuple[Membership, bool]:
    """Add ``user`` to ``team``; returns the membership and whether it is new."""
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
    """Remove ``user`` from ``team``; returns whether they were a member."""
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


def _lockout_window() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)


def login_locked(*, username: str, address: str) -> bool:
    """Too many recent failures for this account, or from this address (its /64 for IPv6:
    ``gatehouse.addresses.address_group``)."""
    recent = LoginFailure.objects.filter(at__gte=_lockout_window())
    if recent.filter(username=username).count() >= settings.GATEHOUSE_LOGIN_MAX_FAILURES:
        return True
    address = address_group(address)
    return bool(address) and recent.filter(address=address).count() >= (
        settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS
    )


def login_failure_record(*, username: str, address: str) -> None:
    """Count a failed login; the failure that reaches the limit locks out and is audited."""
    address = address_group(address)
    LoginFailure.objects.create(username=username[:150], address=address)
    recent = LoginFailure.objects.filter(at__gte=_lockout_window())
    for scope, count, limit in (
        ("user", recent.filter(username=username).count(), settings.GATEHOUSE_LOGIN_MAX_FAILURES),
        (
            "address",
            recent.filter(address=address).count() if address else 0,
            settings.GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS,
        ),
    ):
        if count == limit:
            audit_record(
                action="login.locked_out",
                actor=None,
                target_type=scope,
                target_id=username if scope == "user" else address,
                after={"failures": count, "seconds": settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS},
            )
            logger.warning(
                "login locked out for %s %s", scope, username if scope == "user" else address
            )


def login_failures_clear(*, username: str) -> None:
    LoginFailure.objects.filter(username=username).delete()


class LoginThrottled(Exception):
    """The address asked for more password checks this minute than allowed."""

    MESSAGE = "Too many login attempts from this address."

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"{self.MESSAGE} Try again in {retry_after} s.")
        self.retry_after = retry_after


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
