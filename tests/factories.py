"""Test data made through the services, so every object obeys the same rules as real ones."""

import itertools

from accounts.models import Team, User
from accounts.services import team_create, team_member_add, user_create

PASSWORD = "correct-horse-battery-staple"
_sequence = itertools.count(1)


def make_user(username: str | None = None, *, is_admin: bool = False, **fields: str) -> User:
    return user_create(
        actor=None,
        username=username or f"user{next(_sequence)}",
        password=PASSWORD,
        is_admin=is_admin,
        **fields,
    )


def make_team(name: str | None = None, *, members: tuple[User, ...] = (), actor: User) -> Team:
    team = team_create(actor=actor, name=name or f"team{next(_sequence)}")
    for member in members:
        team_member_add(actor=actor, team=team, user=member)
    return team
