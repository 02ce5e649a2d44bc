"""Writes to identity. Every change of users, teams and membership goes through here.

Each function is keyword-only, runs in one transaction, validates with the model's own
rules and raises ``django.core.exceptions.ValidationError`` (field -> messages) on bad input.
"""

import hashlib
import logging
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken, Membership, Team, User
from trust.services import identity_changed

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
    for field, value in (("full_name", full_name), ("email", email), ("is_admin", is_admin)):
        if value is not None:
            setattr(user, field, value)
    user.full_clean()
    user.save()
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
        identity_changed(actor=actor, cause=f"{user.username} deactivated", users=[user])
        logger.info("user %s deactivated by %s", user.username, actor)
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User) -> User:
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
        identity_changed(actor=actor, cause=f"{user.username} reactivated", users=[user])
        logger.info("user %s reactivated by %s", user.username, actor)
    return user


@transaction.atomic
def user_password_change(
    *,
    actor: User,
    user: User,
    new_password: str,
    old_password: str | None = None,
    keep_token: ApiToken | None = None,
) -> User:
    """Change a password; a user changing their own must prove the old one.

    Every other API token of the user is revoked, so a leaked token dies with the old
    password; ``keep_token`` is the one the caller is using right now.
    """
    if actor.pk == user.pk and not user.check_password(old_password or ""):
        raise ValidationError({"old_password": ["The current password is not correct."]})
    _check_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    api_tokens_revoke(user=user, keep=keep_token)
    logger.info("password of %s changed by %s", user.username, actor)
    return user


@transaction.atomic
def team_create(*, actor: User, name: str, description: str = "") -> Team:
    team = Team(name=name, description=description)
    _save_new(team, unique_field="name")
    logger.info("team %s created by %s", team.name, actor)
    return team


@transaction.atomic
def team_update(*, actor: User, team: Team, description: str | None = None) -> Team:
    if description is not None:
        team.description = description
    team.full_clean()
    team.save()
    logger.info("team %s updated by %s", team.name, actor)
    return team


@transaction.atomic
def team_delete(*, actor: User, team: Team) -> None:
    """Its repositories' syncs are asked for first, while the team still names them."""
    name = team.name
    identity_changed(actor=actor, cause=f"team {name} deleted", teams=[team])
    team.delete()
    logger.info("team %s deleted by %s", name, actor)


@transaction.atomic
def team_member_add(*, actor: User, team: Team, user: User) -> tuple[Membership, bool]:
    """Add ``user`` to ``team``; returns the membership and whether it is new."""
    if not user.is_active:
        raise ValidationError({"username": [f"'{user.username}' is deactivated."]})
    membership, created = Membership.objects.get_or_create(team=team, user=user)
    if created:
        identity_changed(actor=actor, cause=f"{user.username} joined {team.name}", teams=[team])
        logger.info("%s added to team %s by %s", user.username, team.name, actor)
    return membership, created


@transaction.atomic
def team_member_remove(*, actor: User, team: Team, user: User) -> bool:
    """Remove ``user`` from ``team``; returns whether they were a member."""
    deleted, _ = Membership.objects.filter(team=team, user=user).delete()
    if deleted:
        identity_changed(actor=actor, cause=f"{user.username} left {team.name}", teams=[team])
        logger.info("%s removed from team %s by %s", user.username, team.name, actor)
    return bool(deleted)


def api_token_digest(raw_token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: User) -> tuple[str, ApiToken]:
    """Issue a bearer token; the raw value is returned once and never stored."""
    raw_token = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        digest=api_token_digest(raw_token),
        expires_at=timezone.now() + settings.GATEHOUSE_TOKEN_TTL,
    )
    logger.info("API token %s issued to %s", token.pk, user.username)
    return raw_token, token


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_tokens_revoke(*, user: User, keep: ApiToken | None = None) -> int:
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    return tokens.update(revoked_at=timezone.now())
