"""Receivers of other apps' signals; thin: each asks a selector or one service."""

from accounts.models import Team
from policy.inputs import evaluation_inputs_changed
from policy.selectors import policy_get


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    """The policy's signing teams name ``team``: deleting it would drop a required signer."""
    if team in policy_get().signing_teams.all():
        return ["the content-trust policy (signing teams)"]
    return []


def inputs_changed(**kwargs: object) -> None:
    """People, teams, keys, replays or pins changed: the next evaluation reads them afresh."""
    evaluation_inputs_changed()


def default_signer_teams(**kwargs: object) -> list[Team]:
    """A new repository is signed by the teams the policy requires."""
    return list(policy_get().signing_teams.all())
