"""The next step of each reason an evaluation fails for, and the explanation of a tag whose
signer's role is gone (``policy.next_steps``): pure, no database, no Notary."""

import dataclasses
import datetime as dt

import pytest

from policy import api, next_steps, redaction
from policy import evaluation as ev
from policy.evaluation import (
    Identities,
    ImageReference,
    RoleData,
    Signer,
    SignerKey,
    TrustData,
    evaluate,
)
from policy.next_steps import Remembered, gone_signatures
from policy.rules import ANY, DEFAULT_RULE, ENFORCED, Policy, Requirement, Rule, TeamQuota

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=365)
GUN = "registry.example.com/ci/app"
A = "a1" * 32


def requiring(*quotas: TeamQuota, match: str = "all") -> Policy:
    return Policy(enabled=True, default=Rule(DEFAULT_RULE, ENFORCED, Requirement(quotas, match)))


RULES = requiring(TeamQuota("ci"))
JENKINS = "targets/jenkins"


def identities(*, teams=frozenset({"ci"}), active=True, revoked=False) -> Identities:
    return Identities(
        signers={JENKINS: Signer("jenkins", JENKINS, active, frozenset(teams))},
        keys={"k1": SignerKey("jenkins", True, revoked, None, LATER)},
    )


def trust(**roles: dict[str, str]) -> TrustData:
    return TrustData(
        root_pinned=True,
        roles={
            name.replace("_", "/"): RoleData(targets, frozenset({"k1"}), name)
            for name, targets in roles.items()
        },
    )


def check(tag: str, data: TrustData | None, who: Identities, policy: Policy = RULES):
    reference = ImageReference(f"{GUN}:{tag}", GUN, tag, None)
    return evaluate(reference, policy, data, who, now=NOW)


REMEMBERED = (Remembered("1.0", f"sha256:{A}", JENKINS, "jenkins"),)


def test_every_reason_code_of_the_evaluation_has_a_next_step():
    codes = set(api.NotCountedSerializer().fields["reason"].choices)
    assert codes <= set(next_steps.STEPS)


def test_never_signed_says_how_to_sign():
    nobody = ev.NotCounted(ev.NEVER_SIGNED, "nobody signed it")
    result = check("1.0", None, identities())
    failed = dataclasses.replace(
        result, missing=None, teams=(ev.TeamResult("ci", False, (), (nobody,)),)
    )
    (step,) = next_steps.next_steps(failed)
    assert step.reason == ev.NEVER_SIGNED
    assert step.step.startswith("A member of ci signs it in their own role: push it with ")


def test_a_passing_evaluation_has_nothing_to_do():
    result = check(
        "1.0", trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A}), identities()
    )
    assert result.allowed
    assert next_steps.next_steps(result) == ()


def test_an_unpinned_root_under_a_rule_of_no_teams_says_to_pin_it():
    unpinned = dataclasses.replace(trust(targets_releases={"1.0": A}), root_pinned=False)
    result = check("1.0", unpinned, identities(), requiring())
    assert result.decision == ev.DENIED
    steps = next_steps.next_steps(result)
    assert [step.reason for step in steps] == [ev.ROOT_NOT_PINNED]
    assert "pin its root key" in steps[0].step


def test_too_few_signers_says_how_many_more_must_sign():
    signed = trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A})
    result = check("1.0", signed, identities(), requiring(TeamQuota("ci", 3)))
    assert result.decision == "denied"

    (step,) = next_steps.next_steps(result)

    assert step.reason == ev.TOO_FEW
    assert step.why == "3 distinct members of ci must sign it, and only 1 did (jenkins)"
    assert step.step.startswith(
        "More distinct members of ci must sign it: 3 needed, each in their own role. "
        "To sign, push it with DOCKER_CONTENT_TRUST=1"
    )

    (hidden,) = next_steps.next_steps(redaction.redact(result))
    assert hidden.reason == ev.TOO_FEW
    assert "jenkins" not in hidden.why + hidden.step
    assert hidden.step.startswith(
        "More distinct members of a signing team must sign it: 3 needed, each in their own role."
    )


def test_with_any_team_one_satisfied_team_is_enough_and_none_fails():
    signed = trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A})
    either = requiring(TeamQuota("ops"), TeamQuota("ci"), match=ANY)
    passed = check("1.0", signed, identities(), either)
    assert passed.allowed
    assert not passed.teams[0].satisfied  # ops: jenkins is not in it, and need not be
    assert not next_steps.failing(passed)
    assert next_steps.next_steps(passed) == ()

    failed = check("1.0", signed, identities(teams={"qa"}), either)
    assert next_steps.failing(failed)
    assert [step.step for step in next_steps.next_steps(failed)] == [
        "Have a current member of ops sign it, or ask an admin to add jenkins to ops.",
        "Have a current member of ci sign it, or ask an admin to add jenkins to ci.",
    ]


def test_a_signer_not_in_the_team_is_told_apart_from_never_signed():
    signed = trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A})
    (left,) = next_steps.next_steps(check("1.0", signed, identities(teams=frozenset())))
    assert left.reason == ev.NOT_IN_TEAM
    assert left.step == "Have a current member of ci sign it, or ask an admin to add jenkins to ci."

    (only_listed,) = next_steps.next_steps(check("1.0", trust(targets={"1.0": A}), identities()))
    assert only_listed.reason == ev.RELEASES_ONLY
    assert "--roles targets/<their name>" in only_listed.step

    (releases,) = next_steps.next_steps(
        check("1.0", trust(targets_releases={"1.0": A}), identities())
    )
    assert releases.reason == ev.RELEASES_ONLY
    assert releases.why.startswith("it is signed only in targets/releases (by jenkins)")

    (revoked,) = next_steps.next_steps(check("1.0", signed, identities(revoked=True)))
    assert revoked.reason == ev.KEY_REVOKED
    assert revoked.step.startswith("Jenkins signs it again with a current key")


def test_missing_trust_data_an_unknown_tag_and_an_invalid_read_each_have_their_step():
    (absent,) = next_steps.next_steps(check("1.0", None, identities()))
    assert absent.reason == ev.NO_TRUST_DATA
    assert "ask an admin to create the repository" in absent.step

    (unknown,) = next_steps.next_steps(
        check("9.9", trust(targets_releases={"1.0": A}), identities())
    )
    assert unknown.reason == ev.UNKNOWN_TAG
    assert unknown.why == f"the trust data of {GUN} names no tag 9.9"

    reference = ImageReference(f"{GUN}:1.0", GUN, "1.0", None)
    invalid = evaluate(reference, RULES, None, identities(), now=NOW, trust_error="bad")
    assert [step.reason for step in next_steps.next_steps(invalid)] == [ev.TRUST_INVALID]


def test_a_signer_who_left_the_repositorys_teams_is_said_to_have_left_before_the_sync():
    signed = trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A})
    who = identities(teams={"ops"})
    result = check("1.0", signed, who)

    (step,) = next_steps.next_steps(
        result, left=next_steps.departed(result, who, signer_teams=("ci",))
    )
    assert step.why == (
        "jenkins signed it in targets/jenkins; jenkins is no longer in ci, "
        "so the next sync removes that role"
    )
    # Still in one of the repository's signer teams (not the policy's): not said to have left.
    assert next_steps.departed(result, who, signer_teams=("ops",)) == {}
    assert next_steps.departed(result, who, signer_teams=None) == {}


def test_a_gone_signature_explains_an_unknown_tag_instead():
    after_sync = trust(targets={})
    who = identities(teams=frozenset())
    gone = gone_signatures(REMEMBERED, after_sync, who, signer_teams=("ci",), now=NOW)

    (step,) = next_steps.next_steps(check("1.0", after_sync, who), gone=gone)

    assert step.reason == ev.NOT_IN_TEAM
    assert step.why == (
        "jenkins signed it in targets/jenkins; jenkins is no longer in ci, "
        "so Gatehouse removed that role"
    )
    assert step.step == (
        "Have a current member of ci sign it, or ask an admin to add jenkins to ci; "
        "jenkins then signs it again."
    )


@pytest.mark.parametrize(
    ("who", "teams", "code", "words"),
    [
        (identities(active=False), ("ci",), ev.DEACTIVATED, "jenkins is deactivated"),
        (identities(teams={"ops"}), ("ci", "qa"), ev.NOT_IN_TEAM, "no longer in ci or qa"),
        (identities(teams={"ops"}), (), ev.NOT_IN_TEAM, "the repository has no signer teams"),
        (identities(revoked=True), ("ci",), ev.KEY_REVOKED, "jenkins's signing key is revoked"),
        (identities(), ("ci",), next_steps.ROLE_GONE, "that role is not in the trust data now"),
        (identities(teams={"ops"}), None, next_steps.ROLE_GONE, "not in the trust data now"),
    ],
)
def test_why_a_role_is_gone(who, teams, code, words):
    (item,) = gone_signatures(REMEMBERED, trust(targets={}), who, signer_teams=teams, now=NOW)
    assert item.reason == code
    assert words in item.detail
    assert item.username == "jenkins"


def test_a_remembered_signature_still_in_the_trust_data_explains_nothing():
    current = trust(targets_jenkins={"1.0": A})
    assert gone_signatures(REMEMBERED, current, identities(), signer_teams=("ci",)) == ()
    moved = trust(targets_jenkins={"1.0": "b2" * 32})
    (item,) = gone_signatures(REMEMBERED, moved, identities(), signer_teams=("ci",), now=NOW)
    assert item.reason == next_steps.TAG_CHANGED


def test_a_redacted_evaluation_names_nobody_in_its_steps():
    signed = trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A})
    hidden = redaction.redact(check("1.0", signed, identities(teams=frozenset())))

    (step,) = next_steps.next_steps(hidden)

    assert step.reason == ev.NOT_IN_TEAM
    assert "jenkins" not in step.why + step.step
    assert step.step == (
        "Have a current member of a signing team sign it, or ask an admin to add the signer "
        "to a signing team."
    )


def test_notary_unreachable_has_a_step():
    step = next_steps.unreachable("connection refused")
    assert step.reason == next_steps.NOTARY_UNREACHABLE
    assert step.why.endswith("connection refused")
    assert "/readyz" in step.step
