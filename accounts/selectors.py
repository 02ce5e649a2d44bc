"""Reads of identity, scoped to what the viewer may see.

Admins see everyone; any other user sees themself and the teams they belong to. A thing
the viewer may not see does not exist for them (the API answers 404, not 403).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import cast

from django.conf import settings
from django.db import connection
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import ApiToken, LoginFailure, Membership, Team, User
from accounts.services import api_token_digest, login_account_key
from gatehouse.rows import RowReader


def users_matching(users: QuerySet[User], term: str) -> QuerySet[User]:
    """Users whose username, full name or email contains ``term``."""
    if not term:
        return users
    return users.filter(
        Q(username__icontains=term) | Q(full_name__icontains=term) | Q(email__icontains=term)
    )


def _recent_failures() -> QuerySet[LoginFailure]:
    return LoginFailure.objects.filter(
        at__gte=timezone.now() - dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)
    )


def users_locked(users: QuerySet[User], locked: bool) -> QuerySet[User]:
    """The users whose account is locked out (``locked``), or those whose is not. An address
    locked out does not make its users locked."""
    locked_accounts = (
        _recent_failures()
        .values("username")
        .annotate(failures=Count("id"))
        .filter(failures__gte=settings.GATEHOUSE_LOGIN_MAX_FAILURES)
        .values("username")
    )
    users = users.alias(account=Lower("username"))
    if locked:
        return users.filter(account__in=locked_accounts)
    return users.exclude(account__in=locked_accounts)


def accounts_locked_until(usernames: Iterable[str]) -> dict[str, dt.datetime]:
    """For each of ``usernames`` whose account is locked out, when that lifts. One query."""
    by_account = {login_account_key(name): name for name in usernames}
    limit = max(1, settings.GATEHOUSE_LOGIN_MAX_FAILURES)
    failures: dict[str, list[dt.datetime]] = {}
    for account, at in (
        _recent_failures()
        .filter(username__in=list(by_account))
        .order_by("username", "-at")
        .values_list("username", "at")
    ):
        failures.setdefault(account, []).append(at)
    lockout = dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)
    return {
        by_account[account]: ats[limit - 1] + lockout
        for account, ats in failures.items()
        if len(ats) >= limit
    }


def users_locked_until(users: Iterable[User]) -> dict[str, dt.datetime]:
    """For each of ``users`` whose account is locked out, when that lifts: from what
    ``users_shown`` read with them, and in one query for the rest (users read otherwise, or
    whose names the database lowers unlike Python, which keys the failures)."""
    lockout = dt.timedelta(seconds=settings.GATEHOUSE_LOGIN_LOCKOUT_SECONDS)
    locked: dict[str, dt.datetime] = {}
    unread = []
    for user in users:
        if getattr(user, "lockout_account", None) != login_account_key(user.username):
            unread.append(user.username)
        elif user.lockout_from is not None:  # type: ignore[attr-defined]
            locked[user.username] = user.lockout_from + lockout  # type: ignore[attr-defined]
    if unread:
        locked.update(accounts_locked_until(unread))
    return locked


def users_visible(*, viewer: User) -> QuerySet[User]:
    """The users ``viewer`` may see: everyone for an admin, else themself."""
    users = User.objects.all()
    return users if viewer.is_admin else users.filter(pk=viewer.pk)


def user_list(*, viewer: User, search: str = "") -> QuerySet[User]:
    users = users_visible(viewer=viewer).prefetch_related(
        Prefetch("teams", queryset=Team.objects.only("name"))
    )
    return users_matching(users, search)


def users_shown(*, viewer: User) -> QuerySet[User]:
    """The users ``viewer`` may see, each with what its lockout depends on read in the same
    statement (``lockout_account``, ``lockout_from``: for ``users_locked_until``). As it was
    when read: not for a response after a write."""
    limit = max(1, settings.GATEHOUSE_LOGIN_MAX_FAILURES)
    lockout_from = (
        _recent_failures()
        .filter(username=Lower(OuterRef("username")))
        .order_by("-at")
        .values("at")[limit - 1 : limit]
    )
    return users_visible(viewer=viewer).annotate(
        lockout_account=Lower("username"), lockout_from=Subquery(lockout_from)
    )


def team_names_of(users: Iterable[User]) -> dict[int, list[str]]:
    """The names of the teams of each of ``users``, by user id, in name order. One query
    and no models: cheaper than prefetching ``teams`` (a related manager per user)."""
    names: dict[int, list[str]] = {}
    memberships = Membership.objects.filter(user__in=[user.pk for user in users])
    for user_id, name in memberships.order_by("team__name").values_list("user_id", "team__name"):
        names.setdefault(user_id, []).append(name)
    return names


def member_names_of(teams: Iterable[Team]) -> dict[int, list[str]]:
    """The usernames of the members of each of ``teams``, by team id, in username order.
    One query and no models, as ``team_names_of``."""
    names: dict[int, list[str]] = {}
    memberships = Membership.objects.filter(team__in=[team.pk for team in teams])
    for team_id, username in memberships.order_by("user__username").values_list(
        "team_id", "user__username"
    ):
        names.setdefault(team_id, []).append(username)
    return names


def teams_matching(teams: QuerySet[Team], term: str) -> QuerySet[Team]:
    """Teams whose name or description contains ``term``."""
    if not term:
        return teams
    return teams.filter(Q(name__icontains=term) | Q(description__icontains=term))


def team_list(*, viewer: User, member: User | None = None) -> QuerySet[Team]:
    """The teams ``viewer`` may see; with ``member``, only those ``member`` belongs to."""
    # Ordered here: Django leaves Meta.ordering out of a query that groups for the count.
    teams = Team.objects.annotate(member_count=Count("memberships")).order_by("name")
    teams = teams.prefetch_related(
        Prefetch("members", queryset=User.objects.only("username").order_by("username"))
    )
    if not viewer.is_admin:
        teams = teams.filter(memberships__user=viewer)
    if member is not None:
        teams = teams.filter(memberships__user=member)
    return teams


def teams_visible(*, viewer: User) -> QuerySet[Team]:
    """The teams ``viewer`` may see: all for an admin, else those they belong to."""
    teams = Team.objects.all()
    return teams if viewer.is_admin else teams.filter(memberships__user=viewer)


def users_besides_admins_exist() -> bool:
    """Whether anyone but an admin may sign in: the first step of setting Gatehouse up."""
    return User.objects.filter(is_active=True, is_admin=False).exists()


def team_members_exist() -> bool:
    """Whether any team has an active member."""
    return Membership.objects.filter(user__is_active=True).exists()


def team_members(*, team: Team) -> QuerySet[User]:
    """A query of its own: ``team.members`` would start from a prefetch of the team's, and
    keep the columns that one deferred."""
    return User.objects.filter(memberships__team=team).order_by("username")


def team_member_candidates(*, team: Team) -> QuerySet[User]:
    """The users who may be added to ``team``: active, and not in it yet."""
    return User.objects.filter(is_active=True).exclude(memberships__team=team)


def api_token_lookup(*, raw_token: str) -> ApiToken | None:
    """The live token for ``raw_token``: not revoked, not expired, of an active user, with
    that user loaded.

    Every API request comes through here, so it is one SELECT written out: building it with
    the ORM took three times as long as running it (docs/performance.md). Its row becomes
    models as the ORM's would, each column through the backend's converters.
    """
    lookup = _token_lookup()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(lookup.sql, [api_token_digest(raw_token), now, True])
        row = cursor.fetchone()
    return lookup.token_from(row) if row is not None else None


@dataclass(frozen=True)
class _TokenLookup:
    sql: str
    reader: RowReader

    def token_from(self, row: tuple) -> ApiToken:
        token, user = self.reader.models(row)  # both found: an inner join
        token = cast(ApiToken, token)
        token.user = cast(User, user)
        return token


@cache
def _token_lookup() -> _TokenLookup:
    """The statement and its row's reader, made once per process."""
    q = connection.ops.quote_name
    reader = RowReader.of((ApiToken, "t", None), (User, "u", None))
    # Only our own table and column names are formatted in; every value is bound.
    sql = (
        f"SELECT {reader.columns} FROM {q(ApiToken._meta.db_table)} t "  # noqa: S608
        f"JOIN {q(User._meta.db_table)} u ON u.{q('id')} = t.{q('user_id')} "
        f"WHERE t.{q('digest')} = %s AND t.{q('revoked_at')} IS NULL "
        f"AND t.{q('expires_at')} > %s AND u.{q('is_active')} = %s"
    )
    return _TokenLookup(sql=sql, reader=reader)
