"""The content-trust rule (product.md "Semantics to match"), on hand-built trust data."""

import base64
import datetime as dt
import time
from types import MappingProxyType

import pytest

from policy.evaluation import (
    Evaluation,
    ImageReference,
    InvalidReference,
    KeyOwner,
    PolicyRules,
    RoleData,
    SignerMatch,
    TeamResult,
    TrustData,
    evaluate,
    exempting_pattern,
    is_exempt,
    parse_image_reference,
    trust_data_from_verified,
)
from trust.notary.metadata import TargetFile
from trust.notary.reader import VerifiedRepository, VerifiedRole

GUN = "registry.example.com/dev/app"
A = "a" * 64
B = "b" * 64
C = "c" * 64
JENKINS_KEY = "1" * 64
MOBY_KEY = "2" * 64
ALICE_KEY = "3" * 64
REVOKED_KEY = "4" * 64
OWNER_KEY = "5" * 64

OWNERS = {
    JENKINS_KEY: KeyOwner("jenkins", frozenset({"ci"})),
    MOBY_KEY: KeyOwner("moby", frozenset({"dev"})),
    ALICE_KEY: KeyOwner("alice", frozenset({"ci", "security"})),
}


def rules(
    *teams: str,
    mode: str = "enforced",
    enabled: bool = True,
    allow: tuple[str, ...] = (),
) -> PolicyRules:
    return PolicyRules(enabled=enabled, mode=mode, signing_teams=teams, allow_repos=allow)


def role(signers: set[str], targets: dict[str, str] | None = None) -> RoleData:
    return RoleData(targets=targets or {}, signers=frozenset(signers))


def trust(**roles: RoleData) -> TrustData:
    """Roles by keyword: ``targets__ci`` is ``targets/ci``."""
    named = {"targets": role({OWNER_KEY})}
    named.update({name.replace("__", "/"): data for name, data in roles.items()})
    return TrustData(root_pinned=True, roles=named)


def check(image: str, policy: PolicyRules, data: TrustData | None, **kwargs) -> Evaluation:
    return evaluate(parse_image_reference(image), policy, data, OWNERS, **kwargs)


# jenkins (ci) pushed 1.0 = A into releases and targets/ci.
JENKINS_SIGNED = trust(
    targets__releases=role({JENKINS_KEY}, {"1.0": A}),
    targets__ci=role({JENKINS_KEY}, {"1.0": A}),
)


# --- References -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "image", "gun", "tag", "digest"),
    [
        ("nginx", "docker.io/library/nginx:latest", "docker.io/library/nginx", "latest", None),
        ("nginx:1.2", "docker.io/library/nginx:1.2", "docker.io/library/nginx", "1.2", None),
        ("user/app", "docker.io/user/app:latest", "docker.io/user/app", "latest", None),
        (
            "docker.io/nginx",
            "docker.io/library/nginx:latest",
            "docker.io/library/nginx",
            "latest",
            None,
        ),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "docker.io/user/app", "v1", None),
        (
            "registry.example.com/ci/app:1.0",
            "registry.example.com/ci/app:1.0",
            "registry.example.com/ci/app",
            "1.0",
            None,
        ),
        ("localhost:5000/app:tag", "localhost:5000/app:tag", "localhost:5000/app", "tag", None),
        ("localhost/app", "localhost/app:latest", "localhost/app", "latest", None),
        ("host:5000/a/b", "host:5000/a/b:latest", "host:5000/a/b", "latest", None),
        (
            "ns/a.b-c__d/e--f.g_h:_T-1.x",
            "docker.io/ns/a.b-c__d/e--f.g_h:_T-1.x",
            "docker.io/ns/a.b-c__d/e--f.g_h",
            "_T-1.x",
            None,
        ),
        (
            f"nginx@sha256:{A}",
            f"docker.io/library/nginx@sha256:{A}",
            "docker.io/library/nginx",
            None,
            f"sha256:{A}",
        ),
        (
            f"r.io/app:1.0@sha256:{A.upper()}",
            f"r.io/app:1.0@sha256:{A}",
            "r.io/app",
            "1.0",
            f"sha256:{A}",
        ),
    ],
)
def test_valid_references(text: str, image: str, gun: str, tag: str | None, digest: str | None):
    assert parse_image_reference(text) == ImageReference(image, gun, tag, digest)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("nginx ", "whitespace"),
        ("ngi\tnx", "whitespace"),
        ("https://registry.example.com/app", "scheme"),
        ("Nginx", "must be lowercase"),
        ("registry.example.com/Team/app", "must be lowercase"),
        ("Registry.Example.com/app", "registry host 'Registry.Example.com' must be lowercase"),
        ("host:port/app", "not a valid host[:port]"),
        ("-host.io/app", "not a valid host[:port]"),
        ("app/", "empty component"),
        ("a//b", "empty component"),
        ("a_-b", "path component 'a_-b'"),
        ("a..b", "path component"),
        ("nginx:", "tag after ':' is empty"),
        ("nginx:.x", "tag '.x'"),
        ("nginx:" + "t" * 129, "at most 128"),
        (":tag", "repository name is missing"),
        (f"@sha256:{A}", "repository name is missing"),
        ("nginx@sha256:abc", "64 hex digits, not 3"),
        (f"nginx@sha256:{A}0", "64 hex digits, not 65"),
        (f"nginx@sha256:{'g' * 64}", "hexadecimal"),
        (f"nginx@sha512:{A}", "only sha256"),
        ("nginx@", "sha256:<64 hex digits>"),
        (f"nginx@{A}", "sha256:<64 hex digits>"),
        (A, "image ID"),
        ("r.io/" + "a" * 251, "longer than 255"),
    ],
)
def test_invalid_references(text: str, why: str):
    with pytest.raises(InvalidReference, match="is not a valid image reference") as raised:
        parse_image_reference(text)
    assert why in str(raised.value)
    assert str(raised.value).startswith(repr(text))


def test_name_of_exactly_255_characters_is_valid():
    assert len(parse_image_reference("r.io/" + "a" * 250).gun) == 255


def test_invalid_reference_is_a_value_error():
    assert issubclass(InvalidReference, ValueError)


# --- The rule ---------------------------------------------------------------------------


def test_member_signing_releases_and_team_role_is_allowed():
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED)
    assert (result.decision, result.allowed) == ("allowed", True)
    assert result.digest == f"sha256:{A}"
    assert result.teams == (
        TeamResult("ci", True, (SignerMatch("jenkins", JENKINS_KEY, "targets/ci"),)),
    )
    assert result.reasons == (f"team ci: signed sha256:{A} (jenkins in targets/ci)",)
    assert result.root_pinned is True


def test_non_member_is_denied_and_named():
    data = trust(
        targets__releases=role({MOBY_KEY}, {"2.0": B}),
        targets__ci=role({MOBY_KEY}, {"2.0": B}),
    )
    result = check(f"{GUN}:2.0", rules("ci"), data)
    assert (result.decision, result.allowed) == ("denied", False)
    assert result.teams == (TeamResult("ci", False, ()),)
    assert result.reasons == (
        "image did not meet required signing policy",
        f"team ci: no current member signed sha256:{B} "
        "(targets/ci was signed by moby, who is not in ci)",
    )


def test_releases_resigned_with_another_digest_is_denied_and_explained():
    data = trust(
        targets__releases=role({JENKINS_KEY, MOBY_KEY}, {"1.0": B}),
        targets__ci=role({JENKINS_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "denied"
    assert result.digest == f"sha256:{B}"
    assert result.reasons == (
        "image did not meet required signing policy",
        f"team ci: no current member signed sha256:{B} (nobody signed it outside targets/releases)",
        f"targets/ci signed sha256:{A} as 1.0, but targets/releases names sha256:{B} for it",
    )


def test_releases_only_signature_by_a_member_never_counts():
    data = trust(targets__releases=role({JENKINS_KEY}, {"1.0": A}))
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "denied"
    assert result.teams == (TeamResult("ci", False, ()),)
    assert "(nobody signed it outside targets/releases)" in result.reasons[1]


def test_roles_under_releases_do_not_count():
    data = trust(
        targets__releases=role({MOBY_KEY}, {"1.0": A}),
        targets__releases__ci=role({JENKINS_KEY}, {"1.0": A}),
    )
    assert check(f"{GUN}:1.0", rules("ci"), data).decision == "denied"


def test_top_level_targets_names_the_tag_but_does_not_count():
    data = trust(targets=role({JENKINS_KEY}, {"1.0": A}))
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.digest == f"sha256:{A}"
    assert result.decision == "denied"
    assert "(nobody signed it outside targets/releases and targets)" in result.reasons[1]

    data = trust(targets=role({OWNER_KEY}, {"1.0": A}), targets__ci=role({JENKINS_KEY}, {"1.0": A}))
    assert check(f"{GUN}:1.0", rules("ci"), data).decision == "allowed"


def test_two_teams_each_must_be_satisfied():
    both = rules("ci", "dev")
    only_ci = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__ci=role({JENKINS_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", both, only_ci)
    assert result.decision == "denied"
    assert [(t.team, t.satisfied) for t in result.teams] == [("ci", True), ("dev", False)]
    assert result.reasons[1].startswith("team dev: no current member signed")
    assert len(result.reasons) == 2

    ci_and_dev = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__ci=role({JENKINS_KEY}, {"1.0": A}),
        targets__dev=role({MOBY_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", both, ci_and_dev)
    assert result.decision == "allowed"
    assert [t.signers for t in result.teams] == [
        (SignerMatch("jenkins", JENKINS_KEY, "targets/ci"),),
        (SignerMatch("moby", MOBY_KEY, "targets/dev"),),
    ]


def test_one_person_in_both_teams_satisfies_both():
    data = trust(
        targets__releases=role({ALICE_KEY}, {"1.0": A}),
        targets__ci=role({ALICE_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci", "security"), data)
    assert result.decision == "allowed"
    alice = (SignerMatch("alice", ALICE_KEY, "targets/ci"),)
    assert result.teams == (TeamResult("ci", True, alice), TeamResult("security", True, alice))


@pytest.mark.parametrize(
    "owners",
    [
        pytest.param({k: v for k, v in OWNERS.items() if k != JENKINS_KEY}, id="key-not-counted"),
        pytest.param({**OWNERS, JENKINS_KEY: KeyOwner("jenkins", frozenset())}, id="left-team"),
    ],
)
def test_keys_that_do_not_count_are_denied(owners: dict[str, KeyOwner]):
    """Revoked keys, deactivated users and custodians are absent from ``owners``."""
    result = evaluate(parse_image_reference(f"{GUN}:1.0"), rules("ci"), JENKINS_SIGNED, owners)
    assert result.decision == "denied"
    assert result.teams == (TeamResult("ci", False, ()),)


def test_unknown_key_is_described():
    data = trust(
        targets__releases=role({REVOKED_KEY}, {"1.0": A}),
        targets__ci=role({REVOKED_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.reasons[1] == (
        f"team ci: no current member signed sha256:{A} (targets/ci was signed by "
        f"key {REVOKED_KEY[:12]}, not a current key of an active user)"
    )


def test_permissive_reports_the_same_reasons_but_does_not_block():
    enforced = check(f"{GUN}:1.0", rules("dev"), JENKINS_SIGNED)
    permissive = check(f"{GUN}:1.0", rules("dev", mode="permissive"), JENKINS_SIGNED)
    assert enforced.decision == "denied"
    assert (permissive.decision, permissive.allowed, permissive.mode) == (
        "not_enforced",
        True,
        "permissive",
    )
    assert permissive.reasons == enforced.reasons
    assert permissive.teams == enforced.teams
    assert check(f"{GUN}:1.0", rules("ci", mode="permissive"), JENKINS_SIGNED).decision == (
        "allowed"
    )


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        ("registry.example.com/public/app:1", "registry.example.com/public/*"),
        (f"{GUN}:9", GUN),
        ("nginx", "nginx"),
        ("nginx", "docker.io/library/*"),
        ("user/app", "user/*"),
    ],
)
def test_exempt_repositories_are_allowed_naming_the_pattern(image: str, pattern: str):
    policy = rules("ci", allow=("other.io/*", pattern))
    result = check(image, policy, None)
    assert (result.decision, result.allowed) == ("allowed", True)
    assert result.reasons == (f"exempt: {pattern} is in allow_repos",)
    assert result.teams == ()
    assert is_exempt(parse_image_reference(image).gun, policy)
    assert exempting_pattern(parse_image_reference(image).gun, policy.allow_repos) == pattern


def test_exempt_with_trust_data_still_reports_the_findings():
    result = check(f"{GUN}:2.0", rules("ci", allow=("registry.example.com/*",)), JENKINS_SIGNED)
    assert result.decision == "allowed"
    assert result.reasons == (
        "exempt: registry.example.com/* is in allow_repos",
        f"image or trust data does not exist for {GUN}:2.0",
    )


def test_patterns_that_do_not_match_leave_the_rule_in_force():
    policy = rules("ci", allow=("registry.example.com/public/*", "nginx", "dev/*"))
    assert not is_exempt(GUN, policy)
    assert check(f"{GUN}:2.0", policy, JENKINS_SIGNED).decision == "denied"
    assert check("docker.io/library/nginx2", policy, None).decision == "denied"


def test_disabled_never_blocks_but_still_reports():
    result = check(f"{GUN}:2.0", rules("ci", enabled=False), JENKINS_SIGNED)
    assert (result.decision, result.allowed) == ("not_enforced", True)
    assert result.reasons == (
        "content trust is disabled",
        f"image or trust data does not exist for {GUN}:2.0",
    )
    result = check(f"{GUN}:1.0", rules("ci", enabled=False), JENKINS_SIGNED)
    assert result.decision == "not_enforced"
    assert result.teams[0].satisfied
    assert result.digest == f"sha256:{A}"


def test_disabled_without_reading_trust_data_claims_nothing_about_it():
    result = check(f"{GUN}:1.0", rules("ci", enabled=False), None)
    assert (result.decision, result.reasons, result.teams) == (
        "not_enforced",
        ("content trust is disabled",),
        (),
    )
    result = check(f"{GUN}:1.0", rules(enabled=False), None, trust_error="root: pin mismatch")
    assert result.reasons == ("content trust is disabled", "root: pin mismatch")


def test_no_trust_data():
    result = check(f"{GUN}:1.0", rules("ci"), None, trust_error="timestamp: expired")
    assert result.decision == "denied"
    assert result.reasons == (
        f"image or trust data does not exist for {GUN}:1.0",
        "timestamp: expired",
    )
    assert result.teams == (TeamResult("ci", False, ()),)
    assert (result.digest, result.root_pinned) == (None, False)

    result = check(f"{GUN}@sha256:{A}", rules("ci"), None)
    assert result.reasons == (f"image or trust data does not exist for {GUN}@sha256:{A}",)
    assert result.digest == f"sha256:{A}"


def test_unknown_tag():
    result = check(f"{GUN}:3.0", rules("ci"), JENKINS_SIGNED)
    assert result.decision == "denied"
    assert result.reasons == (f"image or trust data does not exist for {GUN}:3.0",)
    assert result.digest is None


def test_no_signing_teams_allows_any_trusted_tag():
    result = check(f"{GUN}:1.0", rules(), JENKINS_SIGNED)
    assert result.decision == "allowed"
    assert result.teams == ()
    assert result.reasons == (
        f"no signing teams are required; targets/releases names sha256:{A} for 1.0",
    )
    assert check(f"{GUN}:3.0", rules(), JENKINS_SIGNED).decision == "denied"


def test_digest_references():
    data = trust(
        targets__releases=role({JENKINS_KEY, MOBY_KEY}, {"1.0": A, "2.0": B}),
        targets__ci=role({JENKINS_KEY}, {"build-7": A}),
        targets__dev=role({MOBY_KEY}, {"2.0": B}),
    )
    result = check(f"{GUN}@sha256:{A}", rules("ci"), data)
    assert (result.decision, result.tag, result.digest) == ("allowed", None, f"sha256:{A}")
    assert result.teams[0].signers == (SignerMatch("jenkins", JENKINS_KEY, "targets/ci"),)

    result = check(f"{GUN}@sha256:{B}", rules("ci"), data)
    assert result.decision == "denied"
    assert "targets/dev was signed by moby, who is not in ci" in result.reasons[1]

    result = check(f"{GUN}@sha256:{C}", rules("ci"), data)
    assert result.reasons == (f"image or trust data does not exist for {GUN}@sha256:{C}",)

    assert check(f"{GUN}@sha256:{B}", rules(), data).reasons == (
        f"no signing teams are required; the trust data holds sha256:{B}",
    )


def test_tag_and_digest_evaluates_the_digest_and_keeps_the_tag():
    result = check(f"{GUN}:2.0@sha256:{A}", rules("ci"), JENKINS_SIGNED)
    assert (result.decision, result.tag, result.digest) == ("allowed", "2.0", f"sha256:{A}")
    assert result.image == f"{GUN}:2.0@sha256:{A}"


def test_to_json_shape():
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED)
    assert result.to_json() == {
        "image": f"{GUN}:1.0",
        "gun": GUN,
        "tag": "1.0",
        "digest": f"sha256:{A}",
        "decision": "allowed",
        "allowed": True,
        "mode": "enforced",
        "root_pinned": True,
        "reasons": [f"team ci: signed sha256:{A} (jenkins in targets/ci)"],
        "teams": [
            {
                "team": "ci",
                "satisfied": True,
                "signers": [{"username": "jenkins", "key_id": JENKINS_KEY, "role": "targets/ci"}],
            }
        ],
    }


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        rules(mode="strict")


def test_trust_data_from_verified():
    def b64(hex_digest: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_digest)).decode()

    def verified(name: str, signers: set[str], targets: dict[str, TargetFile]) -> VerifiedRole:
        return VerifiedRole(
            name=name,
            version=1,
            expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            paths=("",),
            signers=frozenset(signers),
            targets=MappingProxyType(targets),
        )

    repo = VerifiedRepository(
        gun=GUN,
        root_pinned=False,
        root_key_ids=frozenset({"r"}),
        root_canonical_key_ids=frozenset({"c"}),
        roles=MappingProxyType(
            {
                "targets": verified("targets", {OWNER_KEY}, {}),
                "targets/releases": verified(
                    "targets/releases",
                    {JENKINS_KEY},
                    {
                        "1.0": TargetFile(10, {"sha256": b64(A), "sha512": "x"}),
                        "sha512-only": TargetFile(10, {"sha512": "x"}),
                        "garbled": TargetFile(10, {"sha256": "not base64!"}),
                        "short": TargetFile(10, {"sha256": b64("ab")}),
                    },
                ),
                "targets/ci": verified(
                    "targets/ci", {JENKINS_KEY}, {"1.0": TargetFile(10, {"sha256": b64(A)})}
                ),
            }
        ),
        versions=MappingProxyType({"targets": 1}),
    )
    data = trust_data_from_verified(repo)
    assert data == TrustData(
        root_pinned=False,
        roles={
            "targets": RoleData({}, frozenset({OWNER_KEY})),
            "targets/releases": RoleData({"1.0": A}, frozenset({JENKINS_KEY})),
            "targets/ci": RoleData({"1.0": A}, frozenset({JENKINS_KEY})),
        },
    )
    result = evaluate(parse_image_reference(f"{GUN}:1.0"), rules("ci"), data, OWNERS)
    assert (result.decision, result.root_pinned) == ("allowed", False)


def test_fast_enough_for_admission():
    """Thousands of evaluations a second, parsing included (a loose bound for slow CI)."""
    data = trust(
        targets__releases=role({JENKINS_KEY}, {f"{n}.0": A for n in range(200)}),
        targets__ci=role({JENKINS_KEY}, {f"{n}.0": A for n in range(200)}),
        targets__dev=role({MOBY_KEY}, {f"{n}.0": B for n in range(200)}),
    )
    policy = rules("ci", "dev", allow=("registry.example.com/public/*", "nginx"))
    count = 2000
    start = time.perf_counter()
    for n in range(count):
        evaluate(parse_image_reference(f"{GUN}:{n % 200}.0"), policy, data, OWNERS)
    assert count / (time.perf_counter() - start) > 2000
