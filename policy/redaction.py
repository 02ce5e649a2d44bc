"""An evaluation told to a viewer who may not see the repository: the decision without the
people.

Who signs a repository, in which role and for which team, is for those who may see the
repository (``trust.selectors.repository_list``: admins, and members of its signer teams).
Anyone else who checks one of its images gets the decision, the digest and each reason's
category, and no username, role, key or team name. Pure, like ``policy.evaluation``.

The reasons are rebuilt, not filtered: only reasons whose words are known to name nobody
are kept as they are; each team's is written again without names, and any other reason
(a trust-data error, a signer's role naming another digest) is said in general words.
"""

import dataclasses
from typing import Any

from policy import evaluation as ev
from policy.evaluation import Evaluation, NotCounted, TeamResult

# Each reason code in words that name nobody.
GENERAL_WORDS = {
    ev.NEVER_SIGNED: "nobody signed it",
    ev.RELEASES_ONLY: "it is signed only in targets/releases or targets, which never counts",
    ev.NOT_IN_TEAM: "someone who signed it is not in this team",
    ev.DEACTIVATED: "someone who signed it is deactivated",
    ev.KEY_REVOKED: "it was signed with a key that is revoked",
    ev.KEY_EXPIRED: "it was signed with a key whose certificate has expired",
    ev.KEY_NOT_YET_VALID: "it was signed with a key whose certificate is not valid yet",
    ev.KEY_NOT_SIGNING: "it was signed with a key that is not marked as a signing key",
    ev.NOT_OWN_KEY: "a signer's role was signed with a key that is not theirs",
    ev.NOT_OWN_ROLE: "it was signed in a role that is no signer's own role",
    ev.REPLAYED: "a signer's role file is replayed from another repository or role",
    ev.ROOT_NOT_PINNED: "the repository's root is not pinned, so no signature in it counts",
    ev.TOO_FEW: "fewer distinct members of this team signed it than the rule requires",
}
UNKNOWN_WORDS = "a signature did not count"

# Reasons that name nobody, kept as they are: the policy (readable by every user), the
# image asked about, and the repository's root.
_KEPT_PREFIXES = (
    "content trust is disabled",
    "exempt: ",
    "image or trust data does not exist for ",
    "the root of ",
    "no signing teams are required; ",
)
TRUST_ERROR = "trust data does not verify"
OTHER_DIGEST = "a signer's own role names another digest for this tag"


def _not_counted(item: NotCounted) -> NotCounted:
    return NotCounted(item.reason, GENERAL_WORDS.get(item.reason, UNKNOWN_WORDS))


def _team(result: TeamResult) -> TeamResult:
    return TeamResult(
        team="",
        satisfied=result.satisfied,
        signers=(),
        not_counted=tuple(dict.fromkeys(_not_counted(item) for item in result.not_counted)),
        required=result.required,
    )


def _team_reason(number: int, count: int, result: TeamResult, digest: str | None) -> str:
    which = f"signing team {number} of {count}"
    signed = digest or "the digest"
    if result.satisfied:
        who = (
            "a current member"
            if result.required == 1
            else f"at least {result.required} distinct current members"
        )
        return f"{which}: {who} signed {signed} in their own role"
    who = (
        "no current member"
        if result.required == 1
        else f"fewer than {result.required} distinct current members"
    )
    why = "; ".join(dict.fromkeys(item.detail for item in result.not_counted))
    return f"{which}: {who} signed {signed} in their own role" + (f" ({why})" if why else "")


def _reasons(evaluation: Evaluation, teams: tuple[TeamResult, ...]) -> tuple[str, ...]:
    """The reasons in their order. Each ``team <name>: …`` reason is written again as
    ``signing team <n> of <count>: …`` for the team it names: which teams have one depends
    on the requirement (with ``any``, only the satisfied ones of a passing image)."""
    numbered = {
        f"team {result.team}: ": (number, hidden)
        for number, (result, hidden) in enumerate(
            zip(evaluation.teams, teams, strict=True), start=1
        )
    }
    shown: list[str] = []
    for reason in evaluation.reasons:
        if reason == ev.POLICY_FAILED or reason.startswith(_KEPT_PREFIXES):
            shown.append(reason)
        elif reason.startswith("team "):
            prefix = reason[: reason.find(": ") + 2]  # a team name holds no colon
            if prefix in numbered:
                number, hidden = numbered[prefix]
                shown.append(_team_reason(number, len(teams), hidden, evaluation.digest))
        elif reason.startswith(TRUST_ERROR):
            shown.append(TRUST_ERROR)
        elif reason.startswith("targets") and " signed sha256:" in reason:
            shown.append(OTHER_DIGEST)
        # Anything else is left out: its words might name someone.
    return tuple(dict.fromkeys(shown))


def redact(evaluation: Evaluation) -> Evaluation:
    """``evaluation`` without usernames, roles, keys or team names; the decision, mode,
    digest, root and the categories of what did not count stay."""
    teams = tuple(_team(result) for result in evaluation.teams)
    return dataclasses.replace(
        evaluation, reasons=_reasons(evaluation, teams), teams=teams, signatures=()
    )


def explanation_json(evaluation: Evaluation, *, redacted: bool) -> dict[str, Any]:
    """The evaluate API's answer: ``redacted`` says whether the names were left out (each
    team, and how many of its members signed, is then ``null``: the signers are gone, so
    a count of them would read 0)."""
    body = evaluation.to_json()
    body["redacted"] = redacted
    if redacted:
        for team in body["teams"]:
            team["team"] = None
            team["signed"] = None
        if body["rule"] is not None:
            for quota in body["rule"]["require"]["teams"]:
                quota["team"] = None
    return body
