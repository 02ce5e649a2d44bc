"""Who may read an explanation: everyone gets an image's decision; only those who may see its
repository (admins, members of its signer teams) learn who signed it, in which role and for
which team. The trust data is given as Notary would verify it, so no Notary is needed."""

import datetime as dt
import json

import pytest

from bundles.selectors import signing_role_of
from bundles.services import bundle_issue, public_key_revoke
from policy import evaluation as ev
from policy import redaction, services
from policy.evaluation import (
    KEY_REVOKED,
    NOT_IN_TEAM,
    POLICY_FAILED,
    Evaluation,
    NotCounted,
    RoleData,
    SignerMatch,
    TeamResult,
    TrustData,
)
from policy.rules import ANY, DEFAULT_RULE, ENFORCED, Policy, Requirement, Rule, TeamQuota
from policy.services import policy_update
from tests.factories import make_team, make_user
from trust.services.repositories import repository_create
from trust.trust_data import forget

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
TEAM = "sentinels"
SIGNED = "a" * 64
UNSIGNED = "b" * 64


@pytest.fixture
def world(monkeypatch, admin, alice):
    """alice is in ``sentinels``, which the policy requires and which signs ``GUN``; she
    signed 1.0 in her own role. carol, in ``sentinels`` too, signed 2.0 with a key since
    revoked. bob is in no team."""
    forget()
    carol, bob = make_user("carol"), make_user("bob")
    make_team(TEAM, members=(alice, carol), actor=admin)
    repository_create(actor=admin, gun=GUN, signer_team_names=[TEAM])
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=[TEAM], allow_repos=[]
    )
    alices = bundle_issue(user=alice, signing=True).key
    carols = bundle_issue(user=carol, signing=True).key
    public_key_revoke(actor=admin, key=carols)
    trust = TrustData(
        root_pinned=True,
        roles={
            "targets/releases": RoleData(
                targets={"1.0": SIGNED, "2.0": UNSIGNED},
                signers=frozenset({alices.id, carols.id}),
                fingerprint="r",
            ),
            signing_role_of(alice).role: RoleData(
                targets={"1.0": SIGNED}, signers=frozenset({alices.id}), fingerprint="a"
            ),
            signing_role_of(carol).role: RoleData(
                targets={"2.0": UNSIGNED}, signers=frozenset({carols.id}), fingerprint="c"
            ),
        },
    )
    monkeypatch.setattr(services, "verified_repository", lambda gun: gun)
    monkeypatch.setattr(services, "trust_data_from_verified", lambda gun: trust)
    yield {"bob": bob, "alice": alice, "keys": (alices.id, carols.id)}
    forget()


# What must never reach a viewer who may not see the repository.
def secrets_of(world) -> list[str]:
    return ["alice", "carol", "targets/alice", "targets/carol", TEAM, *world["keys"]]


def named(text: str, world) -> list[str]:
    return [secret for secret in secrets_of(world) if secret in text]


def evaluate(api, user, tag):
    response = api(user).post("/api/v1/policy/evaluate/", {"image": f"{GUN}:{tag}"}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_member_of_a_signer_team_gets_the_whole_explanation(api, world):
    allowed = evaluate(api, world["alice"], "1.0")
    assert allowed["redacted"] is False
    assert allowed["decision"] == "allowed"
    assert allowed["teams"][0]["team"] == TEAM
    assert allowed["teams"][0]["signers"] == [
        {"username": "alice", "key_id": world["keys"][0], "role": "targets/alice"}
    ]
    denied = evaluate(api, world["alice"], "2.0")
    assert denied["teams"][0]["not_counted"][0]["username"] == "carol"


def test_an_admin_gets_the_whole_explanation(api, admin, world):
    body = evaluate(api, admin, "1.0")
    assert body["redacted"] is False
    assert body["teams"][0]["signers"][0]["username"] == "alice"


def test_a_viewer_who_may_not_see_the_repository_gets_the_decision_without_names(api, world):
    allowed = evaluate(api, world["bob"], "1.0")
    assert allowed["redacted"] is True
    assert (allowed["decision"], allowed["allowed"], allowed["digest"]) == (
        "allowed",
        True,
        f"sha256:{SIGNED}",
    )
    assert allowed["teams"] == [
        {
            "team": None,
            "needed": 1,
            "signed": None,
            "satisfied": True,
            "signers": [],
            "not_counted": [],
        }
    ]
    assert allowed["rule"]["require"]["teams"] == [{"team": None, "count": 1}]
    assert allowed["reasons"] == [
        f"signing team 1 of 1: a current member signed sha256:{SIGNED} in their own role"
    ]
    assert named(json.dumps(allowed), world) == []

    denied = evaluate(api, world["bob"], "2.0")
    assert (denied["decision"], denied["allowed"], denied["digest"]) == (
        "denied",
        False,
        f"sha256:{UNSIGNED}",
    )
    (team,) = denied["teams"]
    assert team["team"] is None
    assert [item["reason"] for item in team["not_counted"]] == [KEY_REVOKED]
    assert team["not_counted"][0] == {
        "reason": KEY_REVOKED,
        "detail": "it was signed with a key that is revoked",
        "username": None,
        "role": None,
        "key_id": None,
    }
    assert denied["reasons"][0] == POLICY_FAILED
    assert named(json.dumps(denied), world) == []


def test_the_console_check_redacts_for_a_viewer_who_may_not_see_the_repository(client, world):
    client.force_login(world["bob"])
    page = client.get("/content-trust/check/", {"image": f"{GUN}:2.0"})
    assert page.status_code == 200
    assert page.context["redacted"] is True
    text = page.content.decode()
    assert 'data-decision="denied"' in text
    assert f"sha256:{UNSIGNED}" in text
    assert "it was signed with a key that is revoked" in text
    assert 'id="redacted"' in text
    main = text.split('<section class="card evaluation"')[1]
    assert named(main, world) == []


def test_the_console_check_explains_in_full_to_a_member(client, world):
    client.force_login(world["alice"])
    page = client.get("/content-trust/check/", {"image": f"{GUN}:2.0"})
    text = page.content.decode()
    assert page.context["redacted"] is False
    assert 'id="redacted"' not in text
    assert "carol" in text
    assert "targets/carol" in text


# --- The redaction itself ---------------------------------------------------------------


def explanation(**changes) -> Evaluation:
    alice = SignerMatch("alice", "k" * 64, "targets/alice")
    missed = NotCounted(NOT_IN_TEAM, "bob signed it in targets/bob, but is not in ops", "bob")
    fields = {
        "image": f"{GUN}:1.0",
        "gun": GUN,
        "tag": "1.0",
        "digest": f"sha256:{SIGNED}",
        "decision": "denied",
        "allowed": False,
        "mode": "enforced",
        "root_pinned": True,
        "reasons": (
            POLICY_FAILED,
            "team ops: no current member signed it in their own role (bob signed it …)",
            f"targets/bob signed sha256:{UNSIGNED} as 1.0, but targets/releases names …",
            "something new that names alice",
        ),
        "teams": (
            TeamResult("ci", True, (alice,)),
            TeamResult("ops", False, (), (missed, missed)),
        ),
    }
    return Evaluation(**{**fields, **changes})


def test_redaction_keeps_the_decision_and_categories_and_drops_every_name():
    redacted = redaction.redact(explanation())
    assert (redacted.decision, redacted.allowed, redacted.digest, redacted.mode) == (
        "denied",
        False,
        f"sha256:{SIGNED}",
        "enforced",
    )
    assert redacted.reasons == (
        POLICY_FAILED,
        f"signing team 2 of 2: no current member signed sha256:{SIGNED} in their own role "
        "(someone who signed it is not in this team)",
        redaction.OTHER_DIGEST,
    )
    assert [(t.team, t.satisfied, t.signers) for t in redacted.teams] == [
        ("", True, ()),
        ("", False, ()),
    ]
    assert redacted.teams[1].not_counted == (
        NotCounted(NOT_IN_TEAM, "someone who signed it is not in this team"),
    )
    body = redaction.explanation_json(redacted, redacted=True)
    assert [team["team"] for team in body["teams"]] == [None, None]
    text = json.dumps(body)
    for name in ("alice", "bob", "targets/bob", '"ci"', "ops", "k" * 64):
        assert name not in text


def test_every_reason_code_has_words_that_name_nobody():
    from policy import api

    codes = set(api.NotCountedSerializer().fields["reason"].choices)
    assert codes == set(redaction.GENERAL_WORDS)


def test_reasons_that_name_nobody_are_kept_as_they_are():
    kept = (
        "content trust is disabled",
        "exempt: rule exempt-repositories matches by image pattern registry.example.com/public/*, "
        "and its mode is off",
        "exempt: rule exempt-namespaces matches by namespace name kube-system and every image, "
        "and its mode is off",
        f"image or trust data does not exist for {GUN}:1.0",
    )
    redacted = redaction.redact(explanation(reasons=kept, teams=()))
    assert redacted.reasons == kept
    broken = redaction.redact(
        explanation(reasons=("trust data does not verify: targets/alice is bad",), teams=())
    )
    assert broken.reasons == ("trust data does not verify",)


def judged(requirement: Requirement, *signed_by: str) -> Evaluation:
    """A real evaluation of 1.0 under ``requirement``, signed in their own role by each of
    ``signed_by``: alice and carol are in ci, bob in no team."""
    later = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    teams = {"alice": {"ci"}, "carol": {"ci"}, "bob": set()}
    identities = ev.Identities(
        signers={
            f"targets/{name}": ev.Signer(name, f"targets/{name}", True, frozenset(team))
            for name, team in teams.items()
        },
        keys={f"key-{name}": ev.SignerKey(name, True, False, None, later) for name in teams},
    )
    trust = TrustData(
        root_pinned=True,
        roles={
            "targets/releases": RoleData({"1.0": SIGNED}, frozenset({"key-alice"})),
            **{
                f"targets/{name}": RoleData({"1.0": SIGNED}, frozenset({f"key-{name}"}), name)
                for name in signed_by
            },
        },
    )
    policy = Policy(enabled=True, default=Rule(DEFAULT_RULE, ENFORCED, requirement))
    return ev.evaluate(ev.parse_image_reference(f"{GUN}:1.0"), policy, trust, identities)


def assert_names_nobody(body: dict) -> None:
    text = json.dumps(body)
    for name in ("alice", "carol", "bob", '"ci"', '"ops"', "key-"):
        assert name not in text


def test_a_team_that_needs_more_signers_is_redacted_without_saying_nobody_signed():
    two_of_ci = Requirement((TeamQuota("ci", 2),))
    denied = judged(two_of_ci, "alice", "bob")
    assert denied.teams[0].not_counted[0].reason == ev.TOO_FEW  # alice counted, bob did not
    redacted = redaction.redact(denied)
    assert redacted.reasons == (
        POLICY_FAILED,
        f"signing team 1 of 1: fewer than 2 distinct current members signed sha256:{SIGNED} "
        "in their own role (fewer distinct members of this team signed it than the rule "
        "requires; someone who signed it is not in this team)",
    )
    body = redaction.explanation_json(redacted, redacted=True)
    (team,) = body["teams"]
    # How many signed is left out with who did: the signers are gone, so 0 would be false.
    assert (team["needed"], team["signed"], team["satisfied"]) == (2, None, False)
    assert body["rule"]["require"]["teams"] == [{"team": None, "count": 2}]
    assert_names_nobody(body)

    allowed = redaction.redact(judged(two_of_ci, "alice", "carol"))
    assert allowed.reasons == (
        f"signing team 1 of 1: at least 2 distinct current members signed sha256:{SIGNED} "
        "in their own role",
    )
    assert_names_nobody(redaction.explanation_json(allowed, redacted=True))


def test_with_any_team_each_reason_is_redacted_for_the_team_it_names():
    """A passing image under ``any`` has a reason for each satisfied team only: that one is
    the second team here, and an unsatisfied team must not take its reason."""
    ops_or_ci = Requirement((TeamQuota("ops"), TeamQuota("ci")), ANY)
    result = judged(ops_or_ci, "alice")
    assert (result.decision, [t.satisfied for t in result.teams]) == ("allowed", [False, True])
    redacted = redaction.redact(result)
    assert redacted.reasons == (
        f"signing team 2 of 2: a current member signed sha256:{SIGNED} in their own role",
    )
    assert_names_nobody(redaction.explanation_json(redacted, redacted=True))
