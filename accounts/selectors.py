"""Reads of identity, scoped to what the viewer may see.

Admins see everyone; any other user sees themself and the teams they belong to. A thing
the viewer may not see does not exist for them (the API answers 404, not 403).
"""

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from accounts.models import ApiToken, Team, User
from accounts.services import api_token_digest


def user_list(*, viewer: User) -> QuerySet[User]:
    users = User.objects.prefetch_related(Prefetch("teams", queryset=Team.objects.only("name")))
    if viewer.is_admin:
        return users
    return users.filter(pk=viewer.pk)


def team_list(*, viewer: User) -> QuerySet[Team]:
    teams = Team.objects.annotate(member_count=Count("memberships")).prefetch_related(
        Prefetch("members", queryset=User.objects.only("username").order_by("username"))
    )
    if viewer.is_admin:
        return teams
    return teams.filter(memberships__user=viewer)


def team_members(*, team: Team) -> QuerySet[User]:
    return team.members.order_by("username")


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
