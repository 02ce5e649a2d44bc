"""Receivers of other apps' signals; thin: each asks a selector."""

from accounts.models import Team
from trust.selectors import repositories_of_teams

# How many repositories a refusal names; the rest are counted.
NAMED_REPOSITORIES = 10


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    """The repositories whose signer teams name ``team``, by GUN, then how many more."""
    repositories = repositories_of_teams([team.pk])
    guns = list(
        repositories.order_by("gun").values_list("gun", flat=True)[: NAMED_REPOSITORIES + 1]
    )
    if len(guns) <= NAMED_REPOSITORIES:
        return [f"repository {gun}" for gun in guns]
    more = repositories.count() - NAMED_REPOSITORIES
    return [f"repository {gun}" for gun in guns[:NAMED_REPOSITORIES]] + [
        f"and {more} more repositor{'y' if more == 1 else 'ies'}"
    ]
