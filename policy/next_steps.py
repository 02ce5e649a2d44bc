"""What to do about a failing evaluation: one next step per reason code, in one place.

Pure, like ``policy.evaluation``: the console's "Check an image", the repository's signed
tags and the evaluate API (``next_steps``) all say the same. A step is chosen by the
structured code of what did not count (``NotCounted.reason``), of why nothing was examined
(``Evaluation.missing``), or of a remembered signature that is gone (``gone_signatures``):
never by matching the words of a reason.

A redacted evaluation (``policy.redaction``) names nobody: its steps say "the signer" and
"a signing team".
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policy import evaluation as ev
from policy.evaluation import Evaluation, Identities, NotCounted, TrustData
from policy.rules import ANY

# A remembered signature whose role no longer holds it (``gone_signatures``).
ROLE_GONE = "role_gone"
TAG_CHANGED = "tag_changed"
# Their words for someone who may not see the repository (``policy.redaction``).
GENERAL_WORDS = {
    ROLE_GONE: "a signer's role that signed it is not in the trust data now",
    TAG_CHANGED: "a signer's role that signed it no longer names it",
}
# The check could not be made.
NOTARY_UNREACHABLE = "notary_unreachable"

HOW_TO_SIGN = (
    "push it with DOCKER_CONTENT_TRUST=1 and a signing key (a bundle downloaded with "
    "“Use as signing key” ticked; My profile shows the commands)"
)
REMOVED = "so Gatehouse removed that role"


@dataclass(frozen=True, slots=True)
class Remembered:
    """A tag a signer signed in their own role, as Gatehouse remembers it
    (``trust.signed_tags``); ``digest`` is ``sha256:<hex>``."""

    tag: str
    digest: str
    role: str
    username: str


@dataclass(frozen=True, slots=True)
class NextStep:
    """What happened (``why``) and what to do about it (``step``), for one ``reason`` code."""

    reason: str
    why: str
    step: str

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "why": self.why, "step": self.step}


def _either(teams: Iterable[str]) -> str:
    names = [team for team in dict.fromkeys(teams) if team]
    return " or ".join(names) if names else "a signing team"


def _why_gone(
    username: str,
    signer: ev.Signer | None,
    keys: Iterable[ev.SignerKey],
    signer_teams: tuple[str, ...] | None,
    in_trust: bool,
    now: dt.datetime,
) -> tuple[str, str]:
    """Why Gatehouse no longer delegates the role (``desired_delegations``: an active
    member of a signer team with a current signing key), else why the role lost the tag."""
    if signer is not None and not signer.active:
        return ev.DEACTIVATED, f"{username} is deactivated, {REMOVED}"
    if signer is not None and signer_teams is not None and not signer.teams & set(signer_teams):
        if not signer_teams:
            return ev.NOT_IN_TEAM, f"the repository has no signer teams, {REMOVED}"
        return ev.NOT_IN_TEAM, f"{username} is no longer in {_either(signer_teams)}, {REMOVED}"
    problems = [key.unusable(now) for key in keys]
    if signer_teams is not None and problems and all(problems):
        codes = {problem[0] for problem in problems if problem}
        if ev.KEY_REVOKED in codes:
            return ev.KEY_REVOKED, f"{username}'s signing key is revoked, {REMOVED}"
        if ev.KEY_EXPIRED in codes:
            return ev.KEY_EXPIRED, f"{username}'s signing key has expired, {REMOVED}"
        return ev.KEY_NOT_SIGNING, f"{username} has no current signing key, {REMOVED}"
    if not in_trust:
        return ROLE_GONE, "that role is not in the trust data now"
    return TAG_CHANGED, "that role no longer names it"


def gone_signatures(
    remembered: Iterable[Remembered],
    trust: TrustData | None,
    identities: Identities,
    *,
    signer_teams: tuple[str, ...] | None,
    now: dt.datetime | None = None,
) -> tuple[NotCounted, ...]:
    """The remembered signatures the trust data no longer holds, each with why.

    ``signer_teams`` are the repository's (None for a GUN Gatehouse does not manage, where
    nobody removes roles). The code is the evaluation's where it means the same
    (``not_in_team``, ``deactivated``, ``key_revoked``…), so each maps to one next step.
    """
    now = now or dt.datetime.now(dt.UTC)
    gone: list[NotCounted] = []
    for row in remembered:
        role = trust.roles.get(row.role) if trust is not None else None
        if role is not None and role.targets.get(row.tag) == row.digest.removeprefix("sha256:"):
            continue
        keys = [key for key in identities.keys.values() if key.owner == row.username]
        code, why = _why_gone(
            row.username,
            identities.signers.get(row.role),
            keys,
            signer_teams,
            role is not None,
            now,
        )
        gone.append(
            NotCounted(
                code, f"{row.username} signed it in {row.role}; {why}", row.username, row.role
            )
        )
    return tuple(dict.fromkeys(gone))


# Code → the step. ``{who}`` is the signer (or "the signer"), ``{Who}`` the same
# capitalised, ``{teams}`` the teams that failed, ``{needed}`` how many distinct members
# of the team must sign, ``{again}`` says the signer must sign again when their signature
# is gone from the trust data.
STEPS: Mapping[str, str] = {
    ev.NEVER_SIGNED: f"A member of {{teams}} signs it in their own role: {HOW_TO_SIGN}.",
    ev.RELEASES_ONLY: "A member of {teams} signs it in their own role too: docker push with "
    "DOCKER_CONTENT_TRUST=1 signs both, and notary add needs --roles targets/<their name> "
    "as well as --roles targets/releases.",
    ev.NOT_IN_TEAM: "Have a current member of {teams} sign it, or ask an admin to add {who} "
    "to {teams}{again}.",
    ev.DEACTIVATED: "Have a current member of {teams} sign it, or ask an admin to "
    "reactivate {who}{again}.",
    ev.KEY_REVOKED: "{Who} signs it again with a current key: download a new bundle with "
    "“Use as signing key” ticked.",
    ev.KEY_EXPIRED: "{Who} signs it again with a current key: download a new bundle with "
    "“Use as signing key” ticked.",
    ev.KEY_NOT_YET_VALID: "Wait until {who}'s certificate is valid, or sign it with a current key.",
    ev.KEY_NOT_SIGNING: "{Who} ticks “Use as signing key” for that key on My profile, or "
    "signs it with a key that is marked.",
    ev.NOT_OWN_KEY: "Ask an admin to sync the repository, so that only {who}'s keys sign "
    "{who}'s role; {who} then signs it again.",
    ev.NOT_OWN_ROLE: f"A member of {{teams}} signs it in their own role: {HOW_TO_SIGN}.",
    ev.REPLAYED: "A copy of a file signed for another repository or role never counts: "
    "{who} signs it in this repository again.",
    ev.ROOT_NOT_PINNED: "Ask an admin to adopt the repository, or to pin its root key on "
    "the Trust root page.",
    ev.TOO_FEW: "More distinct members of {teams} must sign it: {needed} needed, each in "
    f"their own role. To sign, {HOW_TO_SIGN}.",
    ROLE_GONE: "Ask an admin to sync the repository; {who} then signs it again.",
    TAG_CHANGED: "{Who} signs it again if it is still meant to be signed.",
}


def _missing(evaluation: Evaluation, teams: str) -> NextStep:
    gun, tag, digest = evaluation.gun, evaluation.tag, evaluation.digest
    code = evaluation.missing or ev.NO_TRUST_DATA
    if code == ev.UNKNOWN_TAG:
        return NextStep(
            code,
            f"the trust data of {gun} names no tag {tag}",
            f"Check the tag's spelling. To sign it, a member of {teams} {HOW_TO_SIGN}.",
        )
    if code == ev.UNKNOWN_DIGEST:
        return NextStep(
            code,
            f"no role of {gun} names {digest}",
            "Check the digest, or push and sign that image.",
        )
    if code == ev.TRUST_INVALID:
        return NextStep(
            code,
            f"the trust data of {gun} does not verify",
            "Ask an admin to look at the repository's drift and jobs, and to sync it.",
        )
    return NextStep(
        code,
        f"{gun} has no trust data on Notary: nothing in it was ever signed",
        "If Gatehouse should manage it, ask an admin to create the repository; then a "
        f"member of {teams} signs it: {HOW_TO_SIGN}.",
    )


def failing(evaluation: Evaluation) -> bool:
    """Whether the trust data failed the rule (whatever the mode decided): with ``any``,
    one team's quota is enough, so only every team failing fails."""
    if evaluation.missing is not None:
        return True
    if not evaluation.teams:  # a rule of no teams fails only for an unpinned root
        return ev.POLICY_FAILED in evaluation.reasons
    unsatisfied = [team for team in evaluation.teams if not team.satisfied]
    if evaluation.match == ANY:
        return bool(evaluation.teams) and len(unsatisfied) == len(evaluation.teams)
    return bool(unsatisfied)


def departed(
    evaluation: Evaluation, identities: Identities, *, signer_teams: tuple[str, ...] | None
) -> dict[str, str]:
    """Username → why, for each signer whose signature did not count as ``not_in_team``
    and who is in none of the repository's ``signer_teams`` (None: a GUN Gatehouse does not
    manage): they left, and the next sync removes their role."""
    if signer_teams is None:
        return {}
    left: dict[str, str] = {}
    for team in evaluation.teams:
        for item in team.not_counted:
            signer = identities.signers.get(item.role or "")
            if (
                item.reason == ev.NOT_IN_TEAM
                and item.username
                and signer is not None
                and signer.active
                and not signer.teams & set(signer_teams)
            ):
                left[item.username] = (
                    f"{item.username} signed it in {item.role}; {item.username} is no longer "
                    f"in {_either(signer_teams)}, so the next sync removes that role"
                )
    return left


def next_steps(
    evaluation: Evaluation,
    *,
    gone: Iterable[NotCounted] = (),
    left: Mapping[str, str] | None = None,
) -> tuple[NextStep, ...]:
    """Each reason the evaluation failed for, with what to do next; nothing when it passed.

    ``gone`` (``gone_signatures``) explains a tag that a signer signed and whose role has
    gone since: it stands in for "unknown tag". ``left`` (``departed``) says why of the
    signers who left the repository's signer teams but whose role is still there.
    """
    if not failing(evaluation):
        return ()
    unsatisfied = [team for team in evaluation.teams if not team.satisfied]
    teams = _either(team.team for team in unsatisfied)
    steps = list(gone_steps(gone, teams=[team.team for team in unsatisfied]))
    if evaluation.missing is not None and not (steps and evaluation.missing == ev.UNKNOWN_TAG):
        steps.append(_missing(evaluation, teams))
    if not evaluation.teams and evaluation.missing is None:
        steps.append(_step(NotCounted(ev.ROOT_NOT_PINNED, ""), "", gone=False))
    left = left or {}
    for team in unsatisfied:
        for item in team.not_counted:
            step = _step(item, _either([team.team]), gone=False, needed=team.required)
            why = left.get(item.username or "") if item.reason == ev.NOT_IN_TEAM else None
            steps.append(NextStep(step.reason, why, step.step) if why else step)
    return tuple(dict.fromkeys(steps))


def gone_steps(gone: Iterable[NotCounted], *, teams: Iterable[str]) -> tuple[NextStep, ...]:
    """The steps for remembered signatures gone from the trust data (``gone_signatures``),
    ``teams`` being those whose members may sign instead."""
    words = _either(teams)
    return tuple(dict.fromkeys(_step(item, words, gone=True) for item in gone))


def _step(item: NotCounted, teams: str, *, gone: bool, needed: int = 1) -> NextStep:
    who = item.username or "the signer"
    template = STEPS.get(item.reason, "Ask an admin: {reason}.")
    words = template.format(
        who=who,
        Who=who[:1].upper() + who[1:],
        teams=teams,
        needed=needed,
        again=f"; {who} then signs it again" if gone else "",
        reason=item.reason,
    )
    return NextStep(item.reason, item.detail, words)


def unreachable(error: str) -> NextStep:
    """Notary could not be asked: nothing was verified, and nothing is decided."""
    return NextStep(
        NOTARY_UNREACHABLE,
        f"Notary cannot be reached, so nothing is verified: {error}",
        "Try again in a minute. If it persists, ask an admin to check Notary: /readyz says "
        "whether Gatehouse reaches it.",
    )
