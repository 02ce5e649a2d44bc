"""Reads of identity, scoped to what the viewer may see.

Admins see everyone; any other user sees themself and the teams they belong to. A thing
the viewer may not see does not exist for them (the API answers 404, not 403).
"""

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import ApiToken, Team, User
from accounts.services import api_token_digest


def users_matching(users: QuerySet[User], term: str) -> QuerySet[User]:
    """Users whose username, full name or email contains ``term``."""
    if not term:
        return users
    return users.filter(
        Q(username__icontains=term) | Q(full_name__icontains=term) | Q(email__icontains=term)
    )


def user_list(*, viewer: User, search: str = "") -> QuerySet[User]:
    users = User.objects.prefetch_related(Prefetch("teams", queryset=Team.objects.only("name")))
    if not viewer.is_admin:
        users = users.filter(pk=viewer.pk)
    return users_matching(users, search)


def teams_matching(teams: QuerySet[Team], term: str) -> QuerySet[Team]:
    """Teams whose name or description contains ``term``."""
    if not term:
        return teams
    return teams.filter(Q(name__icontains=term) | Q(description__icontains=term))


def team_list(*, viewer: User, member: User | None = None) -> QuerySet[Team]:
    """The teams ``viewer`` may see; with ``member``, only those ``member`` belongs to."""
    teams = Team.objects.annotate(member_count=Count("memberships")).prefetch_related(
        Prefetch("members", queryset=User.objects.only("username").order_by("username"))
    )
    if not viewer.is_admin:
        teams = teams.filter(memberships__user=viewer)
    if member is not None:
        teams = teams.filter(memberships__user=member)
    return teams


def team_members(*, team: Team) -> QuerySet[User]:
    return team.members.order_by("username")


def team_member_candidates(*, team: Team) -> QuerySet[User]:
    """The users who may be added to ``team``: active, and not in it yet."""
    return User.objects.filter(is_active=True).exclude(memberships__team=team)


def api_token_lookup(*, raw_token: str) -> ApiToken | None:
    """The live token for ``raw_token``: not revoked, not expired, of an active user."""
    return (
        ApiToken.objects.select_related("user")
        .filter(
            digest=api_token_digest(raw_token),
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            user__is_active=True,
        )
        .first()
    )
