"""Receivers of other apps' signals; thin: each asks a selector."""

from accounts.models import Team
from policy.selectors import policy_get


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    """The policy's signing teams name ``team``: deleting it would drop a required signer."""
    if team in policy_get().signing_teams.all():
        return ["the content-trust policy (signing teams)"]
    return []
