"""Answers to ``accounts``' signals: a mapped team's membership belongs to the directory,
and a team a mapping names cannot be deleted."""

from accounts.models import Team
from directory import selectors


def membership_owners(*, team: Team, **kwargs: object) -> list[str]:
    return [f"the directory ({owner})" for owner in selectors.team_owners(team)]


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    return [f"the directory mapping of {owner}" for owner in selectors.team_owners(team)]
