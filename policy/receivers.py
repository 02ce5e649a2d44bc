"""Receivers of other apps' signals; thin: each asks a selector or one service."""

from accounts.models import Team
from policy.inputs import evaluation_inputs_changed
from policy.selectors import policy_current


def team_delete_blockers(*, team: Team, **kwargs: object) -> list[str]:
    """A rule of the policy requires ``team``: deleting it would drop a required signer."""
    if team.name in policy_current().team_names():
        return ["the content-trust policy (a rule requires it)"]
    return []


def inputs_changed(**kwargs: object) -> None:
    """People, teams, keys, replays or pins changed: the next evaluation reads them afresh."""
    evaluation_inputs_changed()


def default_signer_teams(**kwargs: object) -> list[Team]:
    """A new repository is signed by the teams the policy's default rule requires."""
    names = [quota.team for quota in policy_current().default.requirement.teams]
    return list(Team.objects.filter(name__in=names))
