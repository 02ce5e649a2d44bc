"""Answers to ``accounts``' signals: a mapped team's membership belongs to the directory,
a team a mapping names cannot be deleted, and an admin's (de)activation is theirs to keep."""

from accounts.models import Team, User
from directory import selectors
from directory.models import DirectoryAccount
from directory.services import ACTOR_NAME


def membership_owners(*, team: Team, **kwargs: object) -> list[str]:
    return [f"the directory ({owner})" for owner in selectors.team_owners(team)]


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    return [f"the directory mapping of {owner}" for owner in selectors.team_owners(team)]


def user_activity_changed(*, user: User, actor_name: str, **kwargs: object) -> None:
    """Someone other than the directory deactivated or reactivated ``user``: the directory
    no longer reactivates them by itself (its own changes set the flag after this)."""
    if actor_name != ACTOR_NAME:
        DirectoryAccount.objects.filter(user=user, deactivated_by_directory=True).update(
            deactivated_by_directory=False
        )
