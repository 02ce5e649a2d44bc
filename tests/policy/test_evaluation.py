"""The content-trust rule (docs/threat-model.md), on hand-built trust data.

Signing roles are one per user: ``targets/<name>``. A team is satisfied by a current,
active member who signed the digest in that member's own role with one of their current
signing keys, in a role file not replayed from another repository or role.
"""

import base64
import dataclasses
import datetime as dt
import time
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.evaluation import (
    DEACTIVATED,
    KEY_EXPIRED,
    KEY_NOT_SIGNING,
    KEY_NOT_YET_VALID,
    KEY_REVOKED,
    NEVER_SIGNED,
    NOT_IN_TEAM,
    NOT_OWN_KEY,
    NOT_OWN_ROLE,
    POLICY_FAILED,
    RELEASES_ONLY,
    REPLAYED,
    ROOT_NOT_PINNED,
    Evaluation,
    Identities,
    ImageReference,
    InvalidReference,
    NotCounted,
    RoleData,
    Signer,
    SignerKey,
    SignerMatch,
    TeamResult,
    TrustData,
    evaluate,
    needs_trust_data,
    parse_image_reference,
    trust_data_from_verified,
)
from policy.rules import (
    DEFAULT_RULE,
    ENFORCED,
    EXEMPT_REPOSITORIES,
    DocumentError,
    Policy,
    Requirement,
    Rule,
    TeamQuota,
    policy_from_document,
    with_ucp_settings,
)
from trust.notary.metadata import TargetFile
from trust.notary.verified import VerifiedRepository, VerifiedRole

GUN = "registry.example.com/dev/app"
OTHER_GUN = "registry.example.com/other/app"
A = "a" * 64
B = "b" * 64
C = "c" * 64
JENKINS_KEY = "1" * 64
MOBY_KEY = "2" * 64
ALICE_KEY = "3" * 64
UNKNOWN_KEY = "4" * 64  # on nobody's account
OWNER_KEY = "5" * 64  # the repository owner's key for top-level ``targets``
JENKINS_SECOND_KEY = "6" * 64
OPS_KEY = "7" * 64

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
LAST_YEAR = NOW - 365 * DAY
NEXT_YEAR = NOW + 365 * DAY


def signer(name: str, *teams: str, active: bool = True) -> Signer:
    return Signer(name, f"targets/{name}", active, frozenset(teams))


def key(
    owner: str,
    *,
    signing: bool = True,
    revoked: bool = False,
    valid_from: dt.datetime | None = LAST_YEAR,
    valid_until: dt.datetime = NEXT_YEAR,
) -> SignerKey:
    return SignerKey(owner, signing, revoked, valid_from, valid_until)


SIGNERS = {
    s.role: s
    for s in (
        signer("jenkins", "ci"),
        signer("moby", "dev"),
        signer("alice", "ci", "security"),
        signer("ops", "ci", "dev"),
    )
}
KEYS = {
    JENKINS_KEY: key("jenkins"),
    MOBY_KEY: key("moby"),
    ALICE_KEY: key("alice"),
    OPS_KEY: key("ops"),
}
IDENTITIES = Identities(signers=SIGNERS, keys=KEYS)


def identities(
    *,
    signers: dict[str, Signer] | None = None,
    keys: dict[str, SignerKey] | None = None,
    replays: dict[str, tuple[tuple[str, str], ...]] | None = None,
) -> Identities:
    """``IDENTITIES`` with some entries added or replaced."""
    return Identities(
        signers={**SIGNERS, **(signers or {})},
        keys={**KEYS, **(keys or {})},
        replays=replays or {},
    )


def with_key(key_id: str, **changes) -> Identities:
    """``IDENTITIES`` with one key's fields changed."""
    return identities(keys={key_id: dataclasses.replace(KEYS[key_id], **changes)})


EMPTY = Policy(enabled=False, default=Rule(DEFAULT_RULE, ENFORCED, Requirement()))


def rules(
    *teams: str,
    mode: str = "enforced",
    enabled: bool = True,
    allow: tuple[str, ...] = (),
    tofu: bool = False,
) -> Policy:
    """UCP's settings as a policy: the default rule requires one member of each team, and
    ``allow`` becomes the ``exempt-repositories`` rule (mode off)."""
    return with_ucp_settings(
        dataclasses.replace(EMPTY, trust_on_first_use=tofu),
        enabled=enabled,
        mode=mode,
        signing_teams=teams,
        allow_repos=allow,
    )


def exempt_by(pattern: str) -> str:
    """The reason an image that ``allow`` exempts by ``pattern`` leads with."""
    return (
        f"exempt: rule {EXEMPT_REPOSITORIES} matches by image pattern {pattern}, "
        "and its mode is off"
    )


def role(
    signers: set[str], targets: dict[str, str] | None = None, fingerprint: str = ""
) -> RoleData:
    return RoleData(targets=targets or {}, signers=frozenset(signers), fingerprint=fingerprint)


def trust(*, root_pinned: bool = True, **roles: RoleData) -> TrustData:
    """Roles by keyword: ``targets__jenkins`` is ``targets/jenkins``."""
    named = {"targets": role({OWNER_KEY})}
    named.update({name.replace("__", "/"): data for name, data in roles.items()})
    return TrustData(root_pinned=root_pinned, roles=named)


def check(
    image: str,
    policy: Policy,
    data: TrustData | None,
    ids: Identities = IDENTITIES,
    *,
    now: dt.datetime | None = NOW,
    trust_error: str | None = None,
) -> Evaluation:
    return evaluate(
        parse_image_reference(image), policy, data, ids, now=now, trust_error=trust_error
    )


def only_note(result: Evaluation) -> NotCounted:
    """The single reason the single team was not satisfied."""
    (team,) = result.teams
    assert not team.satisfied
    assert team.signers == ()
    (note,) = team.not_counted
    return note


def assert_words(text: str, *words: str) -> None:
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


# jenkins (ci) pushed 1.0 = A into releases and into jenkins's own role.
JENKINS_SIGNED = trust(
    targets__releases=role({JENKINS_KEY}, {"1.0": A}),
    targets__jenkins=role({JENKINS_KEY}, {"1.0": A}),
)
JENKINS_MATCH = SignerMatch("jenkins", JENKINS_KEY, "targets/jenkins")


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
        ("ngi\tnx", "whitespace"),
        ("ngi nx:1", "whitespace"),
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


def test_member_signing_in_their_own_role_is_allowed():
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED)
    assert (result.decision, result.allowed) == ("allowed", True)
    assert result.digest == f"sha256:{A}"
    assert result.teams == (TeamResult("ci", True, (JENKINS_MATCH,)),)
    assert result.teams[0].not_counted == ()
    assert result.reasons == (f"team ci: signed sha256:{A} (jenkins in targets/jenkins)",)
    assert result.root_pinned is True


def test_signer_not_in_the_team_is_denied_and_named():
    data = trust(
        targets__releases=role({MOBY_KEY}, {"2.0": B}),
        targets__moby=role({MOBY_KEY}, {"2.0": B}),
    )
    result = check(f"{GUN}:2.0", rules("ci"), data)
    assert (result.decision, result.allowed) == ("denied", False)
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        NOT_IN_TEAM,
        "moby",
        "targets/moby",
        MOBY_KEY,
    )
    assert_words(note.detail, "moby", "targets/moby", "not in ci")
    assert result.reasons == (
        POLICY_FAILED,
        f"team ci: no current member signed sha256:{B} in their own role ({note.detail})",
    )


@pytest.mark.parametrize("teams", [("ci",), ()], ids=["member", "in-no-team"])
def test_deactivated_signer_does_not_count(teams: tuple[str, ...]):
    ids = identities(signers={"targets/jenkins": signer("jenkins", *teams, active=False)})
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, ids)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        DEACTIVATED,
        "jenkins",
        "targets/jenkins",
        JENKINS_KEY,
    )
    assert_words(note.detail, "jenkins", "targets/jenkins", "deactivated")


def test_signer_who_left_the_team_does_not_count():
    ids = identities(signers={"targets/jenkins": signer("jenkins", "dev")})
    note = only_note(check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, ids))
    assert (note.reason, note.username) == (NOT_IN_TEAM, "jenkins")
    assert_words(note.detail, "jenkins", "not in ci")


def test_releases_resigned_with_another_digest_is_denied_and_explained():
    data = trust(
        targets__releases=role({JENKINS_KEY, MOBY_KEY}, {"1.0": B}),
        targets__jenkins=role({JENKINS_KEY}, {"1.0": A}),
        targets__dev=role({MOBY_KEY}, {"1.0": C}),  # nobody's role: no mismatch line
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "denied"
    assert result.digest == f"sha256:{B}"
    note = only_note(result)
    assert (note.reason, note.role) == (RELEASES_ONLY, "targets/releases")
    assert_words(note.detail, "only in targets/releases", "(by jenkins, moby)")
    assert result.reasons == (
        POLICY_FAILED,
        f"team ci: no current member signed sha256:{B} in their own role ({note.detail})",
        f"targets/jenkins signed sha256:{A} as 1.0, but targets/releases names sha256:{B} for it",
    )


def test_signed_only_in_releases_never_counts_and_names_who_signed_it():
    data = trust(targets__releases=role({JENKINS_KEY}, {"1.0": A}))
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        RELEASES_ONLY,
        None,
        "targets/releases",
        None,
    )
    assert_words(note.detail, "signed only in targets/releases", "(by jenkins)", "never counts")
    assert note.detail in result.reasons[1]


def test_signed_only_in_releases_by_unknown_keys_names_nobody():
    data = trust(targets__releases=role({UNKNOWN_KEY}, {"1.0": A}))
    note = only_note(check(f"{GUN}:1.0", rules("ci"), data))
    assert note.reason == RELEASES_ONLY
    assert_words(note.detail, "signed only in targets/releases")
    assert "(by" not in note.detail


def test_roles_under_releases_do_not_count():
    data = trust(
        targets__releases=role({MOBY_KEY}, {"1.0": A}),
        targets__releases__jenkins=role({JENKINS_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "denied"
    note = only_note(result)
    assert note.reason == RELEASES_ONLY
    assert_words(note.detail, "targets/releases and targets/releases/jenkins", "jenkins", "moby")


def test_top_level_targets_names_the_tag_but_does_not_count():
    data = trust(targets=role({JENKINS_KEY}, {"1.0": A}))
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.digest == f"sha256:{A}"
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.role) == (RELEASES_ONLY, "targets")
    assert_words(note.detail, "signed only in targets (by jenkins)")

    data = trust(
        targets=role({OWNER_KEY}, {"1.0": A}), targets__jenkins=role({JENKINS_KEY}, {"1.0": A})
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "allowed"
    assert result.teams[0].signers == (JENKINS_MATCH,)


def test_never_signed():
    """Only reachable with a role that lists the digest but has no verified signer: a tag
    is always named by ``targets/releases`` or ``targets`` (RELEASES_ONLY), and any other
    role with a signature gives that signature's own reason."""
    data = trust(targets__jenkins=role(set(), {"build-7": A}))
    result = check(f"{GUN}@sha256:{A}", rules("ci"), data)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        NEVER_SIGNED,
        None,
        None,
        None,
    )
    assert_words(note.detail, "nobody signed it")


# --- Laundering: only the signer's own role counts ----------------------------------------


def test_entry_in_a_signers_own_role_counts_for_that_signer():
    """moby (dev) pushed 1.0; ops (ci and dev) copied the entry into ops's own role and
    signed it with ops's key. That counts for both of ops's teams, and rightly: the
    signature is ops's, in ops's role, so it is ops vouching for the digest, exactly as
    if ops had pushed it. What must never count is moby's entry landing anywhere that is
    not moby's own role (the tests below)."""
    data = trust(
        targets__releases=role({MOBY_KEY}, {"1.0": A}),
        targets__ops=role({OPS_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci", "dev"), data)
    assert result.decision == "allowed"
    ops = (SignerMatch("ops", OPS_KEY, "targets/ops"),)
    assert result.teams == (TeamResult("ci", True, ops), TeamResult("dev", True, ops))


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("targets/dev", id="shared-team-role"),
        pytest.param("targets/ops/moby", id="nested-under-another-users-role"),
        pytest.param("targets/moby/x", id="nested-under-own-role"),
        pytest.param("targets/nobody", id="role-owned-by-nobody"),
    ],
)
def test_entry_outside_a_signers_own_role_never_counts(where: str):
    data = TrustData(
        root_pinned=True,
        roles={
            "targets": role({OWNER_KEY}),
            "targets/releases": role({MOBY_KEY}, {"1.0": A}),
            where: role({MOBY_KEY}, {"1.0": A}),
        },
    )
    result = check(f"{GUN}:1.0", rules("dev"), data)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        NOT_OWN_ROLE,
        "moby",
        where,
        MOBY_KEY,
    )
    assert_words(note.detail, f"moby's key {MOBY_KEY}", f"in {where}", "no signer's own role")

    # The same entry in moby's own role does count.
    data.roles["targets/moby"] = role({MOBY_KEY}, {"1.0": A})
    assert check(f"{GUN}:1.0", rules("dev"), data).decision == "allowed"


def test_entry_in_a_role_nobody_owns_by_an_unknown_key_is_described():
    data = trust(
        targets__releases=role({UNKNOWN_KEY}, {"1.0": A}),
        targets__ci=role({UNKNOWN_KEY}, {"1.0": A}),
    )
    note = only_note(check(f"{GUN}:1.0", rules("ci"), data))
    assert (note.reason, note.username, note.role, note.key_id) == (
        NOT_OWN_ROLE,
        None,
        "targets/ci",
        UNKNOWN_KEY,
    )
    assert_words(note.detail, f"key {UNKNOWN_KEY}", "targets/ci", "no signer's own role")


def test_signature_in_another_users_role_with_a_key_not_theirs_is_not_counted():
    """moby's key on ops's role file counts neither for ops (not ops's key) nor for moby
    (not moby's role)."""
    data = trust(
        targets__releases=role({MOBY_KEY}, {"1.0": A}),
        targets__ops=role({MOBY_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("dev"), data)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        NOT_OWN_KEY,
        "ops",
        "targets/ops",
        MOBY_KEY,
    )
    assert_words(note.detail, "targets/ops", f"moby's key {MOBY_KEY}", "not one of ops's")

    # Co-signed by ops's own key, the role counts for ops (the stray key is ignored).
    data.roles["targets/ops"] = role({MOBY_KEY, OPS_KEY}, {"1.0": A})
    result = check(f"{GUN}:1.0", rules("dev"), data)
    assert result.decision == "allowed"
    assert result.teams[0].signers == (SignerMatch("ops", OPS_KEY, "targets/ops"),)


def test_unknown_key_in_own_role_is_not_own_key():
    data = trust(
        targets__releases=role({UNKNOWN_KEY}, {"1.0": A}),
        targets__jenkins=role({UNKNOWN_KEY}, {"1.0": A}),
    )
    note = only_note(check(f"{GUN}:1.0", rules("ci"), data))
    assert (note.reason, note.username, note.key_id) == (NOT_OWN_KEY, "jenkins", UNKNOWN_KEY)
    assert_words(note.detail, f"a key {UNKNOWN_KEY}", "not one of jenkins's")

    # The same when jenkins's key is dropped from the identities altogether.
    ids = Identities(SIGNERS, {k: v for k, v in KEYS.items() if k != JENKINS_KEY})
    note = only_note(check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, ids))
    assert (note.reason, note.key_id) == (NOT_OWN_KEY, JENKINS_KEY)


# --- Replays ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "elsewhere",
    [
        pytest.param((OTHER_GUN, "targets/jenkins"), id="other-repository"),
        pytest.param((GUN, "targets/alice"), id="other-role-name"),
    ],
)
def test_replayed_role_file_does_not_count(elsewhere: tuple[str, str]):
    data = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY}, {"1.0": A}, fingerprint="fp-1"),
    )
    ids = identities(replays={"fp-1": (elsewhere, (GUN, "targets/jenkins"))})
    result = check(f"{GUN}:1.0", rules("ci"), data, ids)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        REPLAYED,
        "jenkins",
        "targets/jenkins",
        None,
    )
    assert_words(note.detail, "targets/jenkins", "jenkins", "replayed from", " ".join(elsewhere))


@pytest.mark.parametrize(
    "replays",
    [
        pytest.param({"fp-1": ((GUN, "targets/jenkins"),)}, id="seen-only-here"),
        pytest.param({"fp-2": ((OTHER_GUN, "targets/jenkins"),)}, id="another-file"),
        pytest.param({}, id="none"),
    ],
)
def test_fingerprint_seen_only_under_this_repository_and_role_is_fine(replays):
    data = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY}, {"1.0": A}, fingerprint="fp-1"),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data, identities(replays=replays))
    assert result.decision == "allowed"
    assert result.teams[0].signers == (JENKINS_MATCH,)


# --- Keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason", "words"),
    [
        pytest.param({"revoked": True}, KEY_REVOKED, ("revoked",), id="revoked"),
        pytest.param({"signing": False}, KEY_NOT_SIGNING, ("not", "signing key"), id="not-signing"),
        pytest.param(
            {"valid_until": NOW - DAY}, KEY_EXPIRED, ("expired", "2025-05-31"), id="expired"
        ),
        pytest.param(
            {"valid_until": NOW}, KEY_EXPIRED, ("expired", "2025-06-01"), id="expires-right-now"
        ),
        pytest.param(
            {"valid_from": NOW + DAY},
            KEY_NOT_YET_VALID,
            ("valid only from", "2025-06-02"),
            id="not-yet-valid",
        ),
        pytest.param(
            {"revoked": True, "signing": False, "valid_until": NOW - DAY},
            KEY_REVOKED,
            ("revoked",),
            id="revoked-first",
        ),
    ],
)
def test_keys_that_are_not_current_signing_keys_are_refused(changes, reason, words):
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, with_key(JENKINS_KEY, **changes))
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username, note.role, note.key_id) == (
        reason,
        "jenkins",
        "targets/jenkins",
        JENKINS_KEY,
    )
    assert_words(note.detail, "jenkins", "targets/jenkins", JENKINS_KEY, *words)
    assert note.detail in result.reasons[1]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"valid_from": NOW}, id="valid-from-now"),
        pytest.param({"valid_from": None}, id="no-start"),
        pytest.param({"valid_until": NOW + dt.timedelta(seconds=1)}, id="until-a-second-later"),
    ],
)
def test_key_valid_now_counts(changes):
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, with_key(JENKINS_KEY, **changes))
    assert result.decision == "allowed"
    assert result.teams[0].signers == (JENKINS_MATCH,)


def test_the_same_evaluation_later_is_denied_once_the_key_expires():
    assert check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, now=NOW).decision == "allowed"
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, now=NEXT_YEAR)
    assert result.decision == "denied"
    note = only_note(result)
    assert note.reason == KEY_EXPIRED
    assert_words(note.detail, "expired", NEXT_YEAR.strftime("%Y-%m-%d"))
    # And before it was valid.
    early = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, now=LAST_YEAR - DAY)
    assert only_note(early).reason == KEY_NOT_YET_VALID


def test_now_defaults_to_the_clock():
    far_future = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
    valid = with_key(JENKINS_KEY, valid_from=None, valid_until=far_future)
    assert check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, valid, now=None).allowed
    expired = with_key(JENKINS_KEY, valid_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    result = check(f"{GUN}:1.0", rules("ci"), JENKINS_SIGNED, expired, now=None)
    assert only_note(result).reason == KEY_EXPIRED


def test_one_member_with_two_keys_is_named_once():
    ids = identities(keys={JENKINS_SECOND_KEY: key("jenkins")})
    data = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY, JENKINS_SECOND_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data, ids)
    assert result.decision == "allowed"
    assert result.teams == (TeamResult("ci", True, (JENKINS_MATCH,)),)
    assert result.reasons == (f"team ci: signed sha256:{A} (jenkins in targets/jenkins)",)

    # One of the two revoked: the other still counts.
    ids = identities(
        keys={JENKINS_SECOND_KEY: key("jenkins"), JENKINS_KEY: key("jenkins", revoked=True)}
    )
    result = check(f"{GUN}:1.0", rules("ci"), data, ids)
    second = SignerMatch("jenkins", JENKINS_SECOND_KEY, "targets/jenkins")
    assert result.teams[0].signers == (second,)


# --- Root pinning -----------------------------------------------------------------------

UNPINNED = dataclasses.replace(JENKINS_SIGNED, root_pinned=False)


def test_unpinned_root_fails_every_team_when_enforced():
    result = check(f"{GUN}:1.0", rules("ci", "dev"), UNPINNED)
    assert (result.decision, result.allowed, result.root_pinned) == ("denied", False, False)
    assert result.digest == f"sha256:{A}"
    notes = {team.team: team.not_counted for team in result.teams}
    assert [(t.team, t.satisfied, t.signers) for t in result.teams] == [
        ("ci", False, ()),
        ("dev", False, ()),
    ]
    (note,) = notes["ci"]
    assert notes["dev"] == (note,)
    assert (note.reason, note.username, note.role, note.key_id) == (
        ROOT_NOT_PINNED,
        None,
        None,
        None,
    )
    assert_words(note.detail, GUN, "not pinned", "no signature in it counts")
    assert result.reasons == (POLICY_FAILED, note.detail)


def test_unpinned_root_is_reported_but_not_enforced_in_permissive_mode():
    enforced = check(f"{GUN}:1.0", rules("ci"), UNPINNED)
    permissive = check(f"{GUN}:1.0", rules("ci", mode="permissive"), UNPINNED)
    assert (permissive.decision, permissive.allowed) == ("not_enforced", True)
    assert (permissive.reasons, permissive.teams) == (enforced.reasons, enforced.teams)
    assert permissive.teams[0].not_counted[0].reason == ROOT_NOT_PINNED


def test_unpinned_root_counts_with_trust_on_first_use_when_signed_properly():
    result = check(f"{GUN}:1.0", rules("ci", tofu=True), UNPINNED)
    assert (result.decision, result.root_pinned) == ("allowed", False)
    assert result.teams == (TeamResult("ci", True, (JENKINS_MATCH,)),)

    # Trust on first use waives the pin, not the rule.
    releases_only = trust(root_pinned=False, targets__releases=role({JENKINS_KEY}, {"1.0": A}))
    result = check(f"{GUN}:1.0", rules("ci", tofu=True), releases_only)
    assert result.decision == "denied"
    assert only_note(result).reason == RELEASES_ONLY


def test_unpinned_root_with_no_signing_teams():
    """No team to satisfy still needs trust data that counts."""
    result = check(f"{GUN}:1.0", rules(), UNPINNED)
    assert (result.decision, result.teams) == ("denied", ())
    assert result.reasons[0] == POLICY_FAILED
    assert_words(result.reasons[1], "not pinned")
    assert check(f"{GUN}:1.0", rules(tofu=True), UNPINNED).decision == "allowed"


def test_unpinned_root_does_not_block_when_disabled_or_exempt():
    assert check(f"{GUN}:1.0", rules("ci", enabled=False), UNPINNED).decision == "not_enforced"
    exempt = check(f"{GUN}:1.0", rules("ci", allow=(GUN,)), UNPINNED)
    assert exempt.decision == "allowed"
    assert exempt.reasons[0] == exempt_by(GUN)


# --- Teams ------------------------------------------------------------------------------


def test_two_teams_each_need_a_member():
    both = rules("ci", "dev")
    result = check(f"{GUN}:1.0", both, JENKINS_SIGNED)
    assert result.decision == "denied"
    assert [(t.team, t.satisfied) for t in result.teams] == [("ci", True), ("dev", False)]
    assert result.teams[0].not_counted == ()
    dev_note = result.teams[1].not_counted[0]
    assert (dev_note.reason, dev_note.username) == (NOT_IN_TEAM, "jenkins")
    assert result.reasons[1].startswith(f"team dev: no current member signed sha256:{A}")
    assert len(result.reasons) == 2

    ci_and_dev = trust(
        targets__releases=role({JENKINS_KEY, MOBY_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY}, {"1.0": A}),
        targets__moby=role({MOBY_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", both, ci_and_dev)
    assert result.decision == "allowed"
    assert [t.signers for t in result.teams] == [
        (JENKINS_MATCH,),
        (SignerMatch("moby", MOBY_KEY, "targets/moby"),),
    ]
    assert result.reasons == (
        f"team ci: signed sha256:{A} (jenkins in targets/jenkins)",
        f"team dev: signed sha256:{A} (moby in targets/moby)",
    )


def test_one_person_in_both_teams_satisfies_both():
    data = trust(
        targets__releases=role({ALICE_KEY}, {"1.0": A}),
        targets__alice=role({ALICE_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci", "security"), data)
    assert result.decision == "allowed"
    alice = (SignerMatch("alice", ALICE_KEY, "targets/alice"),)
    assert result.teams == (TeamResult("ci", True, alice), TeamResult("security", True, alice))


def test_several_members_of_a_team_are_all_named():
    data = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY}, {"1.0": A}),
        targets__alice=role({ALICE_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "allowed"
    assert set(result.teams[0].signers) == {
        JENKINS_MATCH,
        SignerMatch("alice", ALICE_KEY, "targets/alice"),
    }


def test_a_team_named_twice_is_evaluated_once():
    result = check(f"{GUN}:1.0", rules("ci", "ci"), JENKINS_SIGNED)
    assert result.teams == (TeamResult("ci", True, (JENKINS_MATCH,)),)


# --- Modes, exemptions, references ------------------------------------------------------


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
    assert result.reasons == (exempt_by(pattern),)
    assert result.teams == ()
    gun = parse_image_reference(image).gun
    assert not needs_trust_data(policy, gun)
    applied = policy.applied(gun)
    assert (applied.rule.name, applied.rule.mode, applied.image) == (
        EXEMPT_REPOSITORIES,
        "off",
        pattern,
    )


def test_exempt_with_trust_data_still_reports_the_findings():
    result = check(f"{GUN}:2.0", rules("ci", allow=("registry.example.com/**",)), JENKINS_SIGNED)
    assert result.decision == "allowed"
    assert result.reasons == (
        exempt_by("registry.example.com/**"),
        f"image or trust data does not exist for {GUN}:2.0",
    )
    # The findings are judged by the exempting rule's own requirement: UCP's exemption
    # requires no team, so a tag the trust data names is all there is to report ...
    result = check(f"{GUN}:1.0", rules("dev", allow=("registry.example.com/**",)), JENKINS_SIGNED)
    assert (result.decision, result.teams) == ("allowed", ())
    assert result.reasons == (
        exempt_by("registry.example.com/**"),
        f"no signing teams are required; targets/releases names sha256:{A} for 1.0",
    )
    # ... and an off rule that names teams reports on each of them.
    policy = dataclasses.replace(
        rules("ci"),
        rules=(
            Rule(
                "legacy",
                "off",
                Requirement((TeamQuota("dev"),)),
                images=("registry.example.com/**",),
            ),
        ),
    )
    result = check(f"{GUN}:1.0", policy, JENKINS_SIGNED)
    assert result.decision == "allowed"
    assert result.reasons[:2] == (
        "exempt: rule legacy matches by image pattern registry.example.com/**, and its mode is off",
        POLICY_FAILED,
    )
    assert result.teams[0].team == "dev"
    assert result.teams[0].not_counted[0].reason == NOT_IN_TEAM


def test_patterns_that_do_not_match_leave_the_rule_in_force():
    policy = rules("ci", allow=("registry.example.com/public/*", "nginx", "dev/*"))
    assert needs_trust_data(policy, GUN)
    assert policy.applied(GUN).rule.name == DEFAULT_RULE
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
    result = check(f"{GUN}:1.0", rules("dev", enabled=False), JENKINS_SIGNED)
    assert (result.decision, result.allowed) == ("not_enforced", True)
    assert not result.teams[0].satisfied


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
    assert result.teams == (TeamResult("ci", False, ()),)
    # The tag is looked up before the root is questioned.
    result = check(f"{GUN}:3.0", rules("ci"), UNPINNED)
    assert result.reasons == (f"image or trust data does not exist for {GUN}:3.0",)


def test_tag_in_a_signers_role_only_is_unknown():
    """Docker looks a tag up in targets/releases, else targets: nowhere else."""
    data = trust(targets__jenkins=role({JENKINS_KEY}, {"1.0": A}))
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.reasons == (f"image or trust data does not exist for {GUN}:1.0",)
    assert check(f"{GUN}@sha256:{A}", rules("ci"), data).decision == "allowed"


def test_a_tag_needs_the_digest_under_that_tag_in_the_signers_own_role():
    """For a tag, the signer's own role must name the same digest for that tag; the digest
    under another name in it counts only when the image is asked for by digest."""
    data = trust(
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY}, {"build-7": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert result.decision == "denied"
    assert only_note(result).reason == RELEASES_ONLY
    assert check(f"{GUN}@sha256:{A}", rules("ci"), data).decision == "allowed"


def test_releases_takes_precedence_over_targets_for_a_tag():
    data = trust(
        targets=role({OWNER_KEY}, {"1.0": B}),
        targets__releases=role({JENKINS_KEY}, {"1.0": A}),
        targets__jenkins=role({JENKINS_KEY}, {"1.0": A}),
    )
    result = check(f"{GUN}:1.0", rules("ci"), data)
    assert (result.decision, result.digest) == ("allowed", f"sha256:{A}")


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
        targets__jenkins=role({JENKINS_KEY}, {"build-7": A}),
        targets__moby=role({MOBY_KEY}, {"2.0": B}),
    )
    result = check(f"{GUN}@sha256:{A}", rules("ci"), data)
    assert (result.decision, result.tag, result.digest) == ("allowed", None, f"sha256:{A}")
    assert result.teams[0].signers == (JENKINS_MATCH,)

    result = check(f"{GUN}@sha256:{B}", rules("ci"), data)
    assert result.decision == "denied"
    note = only_note(result)
    assert (note.reason, note.username) == (NOT_IN_TEAM, "moby")
    assert note.detail in result.reasons[1]

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
        "namespace": None,
        "decision": "allowed",
        "allowed": True,
        "mode": "enforced",
        "rule": {
            "name": "default",
            "position": None,
            "mode": "enforced",
            "scope": {"images": [], "namespaces": []},
            "require": {"match": "all", "teams": [{"team": "ci", "count": 1}]},
            "matched_namespace": None,
            "matched_image": None,
            "outranked": [],
            "why": "no rule's scope matches, so the default rule applies",
        },
        "root_pinned": True,
        "reasons": [f"team ci: signed sha256:{A} (jenkins in targets/jenkins)"],
        "match": "all",
        "teams": [
            {
                "team": "ci",
                "needed": 1,
                "signed": 1,
                "satisfied": True,
                "signers": [
                    {"username": "jenkins", "key_id": JENKINS_KEY, "role": "targets/jenkins"}
                ],
                "not_counted": [],
            }
        ],
    }
    denied = check(f"{GUN}:1.0", rules("dev"), JENKINS_SIGNED).to_json()
    note = denied["teams"][0]["not_counted"]
    assert denied["teams"][0]["signers"] == []
    assert (denied["teams"][0]["needed"], denied["teams"][0]["signed"]) == (1, 0)
    assert note == [
        {
            "reason": NOT_IN_TEAM,
            "detail": note[0]["detail"],
            "username": "jenkins",
            "role": "targets/jenkins",
            "key_id": JENKINS_KEY,
        }
    ]
    assert_words(note[0]["detail"], "jenkins", "not in dev")


@pytest.mark.parametrize(
    ("document", "path"),
    [
        pytest.param(
            {"enabled": True, "default": {"mode": "strict"}, "rules": []},
            "default.mode",
            id="default",
        ),
        pytest.param(
            {
                "enabled": True,
                "default": {"require": {"teams": []}},
                "rules": [{"name": "prod", "images": [GUN], "mode": "strict"}],
            },
            "rules[0].mode",
            id="rule",
        ),
    ],
)
def test_unknown_mode_is_refused(document: dict, path: str):
    """A mode is checked where a policy is read: the policy document (the API's, a YAML
    file's, the stored one)."""
    with pytest.raises(DocumentError, match="mode") as raised:
        policy_from_document(document)
    assert isinstance(raised.value, ValueError)
    assert raised.value.errors == {
        path: ["must be one of enforced, permissive, off, not 'strict'."]
    }


def test_trust_data_from_verified():
    def b64(hex_digest: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_digest)).decode()

    def verified(
        name: str, key_ids: set[str], targets: dict[str, TargetFile], fingerprint: str = ""
    ) -> VerifiedRole:
        return VerifiedRole(
            name=name,
            version=1,
            expires=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            paths=("",),
            signers=frozenset(f"tuf-{key_id[:4]}" for key_id in key_ids),  # TUF IDs: unused
            targets=MappingProxyType(targets),
            signer_key_ids=frozenset(key_ids),
            fingerprint=fingerprint,
        )

    repo = VerifiedRepository(
        gun=GUN,
        root_pinned=False,
        root_key_ids=frozenset({"r"}),
        root_canonical_key_ids=frozenset({"c"}),
        roles=MappingProxyType(
            {
                "targets": verified("targets", {OWNER_KEY}, {}, "fp-targets"),
                "targets/releases": verified(
                    "targets/releases",
                    {JENKINS_KEY},
                    {
                        "1.0": TargetFile(10, {"sha256": b64(A), "sha512": "x"}),
                        "sha512-only": TargetFile(10, {"sha512": "x"}),
                        "garbled": TargetFile(10, {"sha256": "not base64!"}),
                        "short": TargetFile(10, {"sha256": b64("ab")}),
                    },
                    "fp-releases",
                ),
                "targets/jenkins": verified(
                    "targets/jenkins",
                    {JENKINS_KEY},
                    {"1.0": TargetFile(10, {"sha256": b64(A)})},
                    "fp-jenkins",
                ),
            }
        ),
        versions=MappingProxyType({"targets": 1}),
    )
    data = trust_data_from_verified(repo)
    assert data == TrustData(
        root_pinned=False,
        roles={
            "targets": RoleData({}, frozenset({OWNER_KEY}), "fp-targets"),
            "targets/releases": RoleData({"1.0": A}, frozenset({JENKINS_KEY}), "fp-releases"),
            "targets/jenkins": RoleData({"1.0": A}, frozenset({JENKINS_KEY}), "fp-jenkins"),
        },
    )
    reference = parse_image_reference(f"{GUN}:1.0")
    result = evaluate(reference, rules("ci", tofu=True), data, IDENTITIES, now=NOW)
    assert (result.decision, result.root_pinned) == ("allowed", False)
    assert result.teams[0].signers == (JENKINS_MATCH,)
    result = evaluate(reference, rules("ci"), data, IDENTITIES, now=NOW)
    assert result.decision == "denied"
    assert result.teams[0].not_counted[0].reason == ROOT_NOT_PINNED
    replayed = identities(replays={"fp-jenkins": ((OTHER_GUN, "targets/jenkins"),)})
    result = evaluate(reference, rules("ci", tofu=True), data, replayed, now=NOW)
    assert result.teams[0].not_counted[0].reason == REPLAYED


def test_fast_enough_for_admission():
    """Thousands of evaluations a second, parsing included (a loose bound for slow CI)."""
    data = trust(
        targets__releases=role({JENKINS_KEY, MOBY_KEY}, {f"{n}.0": A for n in range(200)}),
        targets__jenkins=role({JENKINS_KEY}, {f"{n}.0": A for n in range(200)}, "fp-j"),
        targets__moby=role({MOBY_KEY}, {f"{n}.0": A for n in range(200)}, "fp-m"),
        targets__dev=role({MOBY_KEY}, {f"{n}.0": B for n in range(200)}),
    )
    ids = identities(replays={f"fp-{n}": ((OTHER_GUN, "targets/jenkins"),) for n in range(100)})
    policy = rules("ci", "dev", allow=("registry.example.com/public/*", "nginx"))
    assert check(f"{GUN}:1.0", policy, data, ids).decision == "allowed"
    count = 2000
    start = time.perf_counter()
    for n in range(count):
        evaluate(parse_image_reference(f"{GUN}:{n % 200}.0"), policy, data, ids, now=NOW)
    assert count / (time.perf_counter() - start) > 2000


# --- Properties -------------------------------------------------------------------------

USERS = ("ann", "ben", "cat")
TEAMS = ("ci", "dev")
# Each user's own key, usually on their account, and a stray key on anyone's or nobody's.
KEY_IDS = (*(f"key-{user}" for user in USERS), "key-stray")
FINGERPRINTS = ("f-0", "f-1", "f-2", "f-3", "f-4", "f-5")
OWN_ROLES = tuple(f"targets/{user}" for user in USERS)
OTHER_ROLES = (
    "targets",
    "targets/releases",
    "targets/releases/ann",
    "targets/dev",
    "targets/ann/x",
)
PLACES = tuple((gun, name) for gun in (GUN, OTHER_GUN) for name in (*OWN_ROLES, "targets/x"))
REFERENCES = (f"{GUN}:1.0", f"{GUN}@sha256:{A}", f"{GUN}:2.0@sha256:{B}")
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no example database in the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # conftest's autouse ones
)

mostly_true = st.sampled_from((True,) * 5 + (False,))
rarely_true = mostly_true.map(lambda value: not value)


def signer_keys(usual_owner: str | None) -> st.SearchStrategy[SignerKey]:
    owners = (usual_owner,) * 6 + USERS if usual_owner else USERS
    return st.builds(
        SignerKey,
        owner=st.sampled_from(owners),
        signing=mostly_true,
        revoked=rarely_true,
        valid_from=st.sampled_from((None, NOW - DAY, NOW - DAY, NOW - DAY, NOW, NOW + DAY)),
        valid_until=st.sampled_from((NOW - DAY, NOW) + (NOW + DAY,) * 4),
    )


@st.composite
def role_data(draw) -> RoleData:
    targets = {}
    for tag, digests in (("1.0", (A, A, A, B)), ("2.0", (A, B, B, B)), ("other", (A, B))):
        if draw(mostly_true if tag != "other" else st.booleans()):
            targets[tag] = draw(st.sampled_from(digests))
    return RoleData(
        targets=targets,
        signers=draw(st.frozensets(st.sampled_from(KEY_IDS), min_size=1, max_size=2)),
        fingerprint=draw(st.sampled_from(FINGERPRINTS)),
    )


@st.composite
def random_scenarios(draw) -> tuple[ImageReference, Policy, TrustData, Identities]:
    """Small random identities and trust data, biased towards ones that may pass."""
    signers = {}
    for user in USERS:
        if draw(mostly_true):
            teams = draw(
                st.frozensets(st.sampled_from(TEAMS), min_size=draw(st.sampled_from((0, 1, 1))))
            )
            signers[f"targets/{user}"] = Signer(user, f"targets/{user}", draw(mostly_true), teams)
    keys = {}
    for user in USERS:
        if draw(mostly_true):
            keys[f"key-{user}"] = draw(signer_keys(user))
    if draw(st.booleans()):
        keys["key-stray"] = draw(signer_keys(None))
    replays = draw(
        st.dictionaries(
            st.sampled_from(FINGERPRINTS),
            st.lists(st.sampled_from(PLACES), min_size=1, max_size=3, unique=True).map(tuple),
            max_size=2,
        )
    )
    roles = {}
    for name in OWN_ROLES + OTHER_ROLES:
        if draw(mostly_true if name in (*OWN_ROLES, "targets/releases") else st.booleans()):
            held = draw(role_data())
            if name in OWN_ROLES and draw(mostly_true):  # usually signed by its owner's key
                held = dataclasses.replace(
                    held, signers=held.signers | {f"key-{name.removeprefix('targets/')}"}
                )
            roles[name] = held
    data = TrustData(root_pinned=draw(mostly_true), roles=roles)
    return (*draw(policies_and_references()), data, Identities(signers, keys, replays))


@st.composite
def policies_and_references(draw) -> tuple[ImageReference, Policy]:
    policy = rules(*draw(st.lists(st.sampled_from(TEAMS), unique=True)), tofu=draw(st.booleans()))
    return parse_image_reference(draw(st.sampled_from(REFERENCES))), policy


CHANGES = (
    "deactivate",
    "leave-teams",
    "forget-signer",
    "drop-key",
    "give-key-away",
    "revoke",
    "not-signing",
    "expire",
    "not-yet-valid",
    "starts-now",
    "drop-role",
    "retag",
    "foreign-key",
    "stray-key",
    "nest",
    "nest-under-other",
    "unowned",
    "under-releases",
    "replay-elsewhere",
    "replay-as-other-role",
    "seen-here",
    "rerelease",
    "unrelease",
)


KEY_CHANGES = ("give-key-away", "revoke", "not-signing", "expire", "not-yet-valid", "starts-now")


@st.composite
def near_valid_scenarios(draw) -> tuple[ImageReference, Policy, TrustData, Identities]:
    """Everyone signs properly, then up to four things go wrong: the single-fault cases
    that random data rarely reaches."""
    signers = {
        f"targets/{user}": signer(user, *draw(st.frozensets(st.sampled_from(TEAMS), min_size=1)))
        for user in USERS
    }
    keys = {f"key-{user}": key(user, valid_from=NOW - DAY, valid_until=NOW + DAY) for user in USERS}
    signed = {"1.0": A, "2.0": B}
    roles = {
        "targets": RoleData({}, frozenset({"key-stray"}), "f-targets"),
        "targets/releases": RoleData(dict(signed), frozenset({"key-stray"}), "f-releases"),
        **{
            f"targets/{user}": RoleData(dict(signed), frozenset({f"key-{user}"}), f"f-{user}")
            for user in USERS
        },
    }
    replays: dict[str, tuple[tuple[str, str], ...]] = {}
    root_pinned = draw(mostly_true)
    fault = st.tuples(st.sampled_from(CHANGES), st.sampled_from(range(len(USERS))))
    for change, n in (draw(fault) for _ in range(draw(st.integers(0, 4)))):
        user, other = USERS[n], USERS[(n + 1) % len(USERS)]
        name, key_id, fingerprint = f"targets/{user}", f"key-{user}", f"f-{user}"
        person, key_, held = signers.get(name), keys.get(key_id), roles.get(name)
        if change == "deactivate" and person:
            signers[name] = dataclasses.replace(person, active=False)
        elif change == "leave-teams" and person:
            signers[name] = dataclasses.replace(person, teams=frozenset())
        elif change == "forget-signer":
            signers.pop(name, None)
        elif change == "drop-key":
            keys.pop(key_id, None)
        elif change in KEY_CHANGES:
            if key_:
                keys[key_id] = dataclasses.replace(
                    key_,
                    **{
                        "give-key-away": {"owner": other},
                        "revoke": {"revoked": True},
                        "not-signing": {"signing": False},
                        "expire": {"valid_until": NOW},
                        "not-yet-valid": {"valid_from": NOW + DAY},
                        "starts-now": {"valid_from": NOW},
                    }[change],
                )
        elif change == "drop-role":
            roles.pop(name, None)
        elif change == "retag" and held:
            roles[name] = dataclasses.replace(held, targets={"1.0": B, "build": A})
        elif change in ("foreign-key", "stray-key") and held:
            stray = f"key-{other}" if change == "foreign-key" else "key-stray"
            signers_of = frozenset({stray}) if change == "foreign-key" else held.signers | {stray}
            roles[name] = dataclasses.replace(held, signers=signers_of)
        elif change in ("nest", "nest-under-other", "unowned", "under-releases") and held:
            elsewhere = {
                "nest": f"{name}/x",
                "nest-under-other": f"targets/{other}/{user}",
                "unowned": "targets/dev",
                "under-releases": f"targets/releases/{user}",
            }[change]
            roles[elsewhere] = roles.pop(name)
        elif change == "replay-elsewhere":
            replays[fingerprint] = ((OTHER_GUN, name), (GUN, name))
        elif change == "replay-as-other-role":
            replays[fingerprint] = ((GUN, f"targets/{other}"),)
        elif change == "seen-here":
            replays[fingerprint] = ((GUN, name),)
        elif change in ("rerelease", "unrelease"):
            listed = dict(roles["targets/releases"].targets)
            if change == "rerelease":
                listed["1.0"] = C
            else:
                listed.pop("1.0", None)
            roles["targets/releases"] = dataclasses.replace(
                roles["targets/releases"], targets=listed
            )
    data = TrustData(root_pinned=root_pinned, roles=roles)
    return (*draw(policies_and_references()), data, Identities(signers, keys, replays))


scenarios = st.one_of(near_valid_scenarios(), random_scenarios())


def expected_digest(reference: ImageReference, data: TrustData) -> str | None:
    """The digest evaluated, found independently of the code under test."""
    if reference.digest is not None:
        hex_digest = reference.digest.removeprefix("sha256:")
        found = any(hex_digest in r.targets.values() for r in data.roles.values())
        return hex_digest if found else None
    for name in ("targets/releases", "targets"):
        if name in data.roles and reference.tag in data.roles[name].targets:
            return data.roles[name].targets[reference.tag]
    return None


def counts(
    reference: ImageReference,
    data: TrustData,
    ids: Identities,
    hex_digest: str,
    team: str,
    name: str,
    key_id: str,
) -> bool:
    """Whether ``key_id``'s signature on role ``name`` satisfies ``team``, by the rule as
    stated: an active member of the team, in their own role holding the digest, with one
    of their current signing keys, in a file not seen under another (GUN, role)."""
    person = ids.signers.get(name)
    held = data.roles.get(name)
    key_ = ids.keys.get(key_id)
    if person is None or held is None or key_ is None:
        return False
    if reference.digest is None:
        holds = held.targets.get(reference.tag) == hex_digest
    else:
        holds = hex_digest in held.targets.values()
    elsewhere = [p for p in ids.replays.get(held.fingerprint, ()) if p != (reference.gun, name)]
    return (
        name == f"targets/{person.username}"
        and person.active
        and team in person.teams
        and holds
        and key_id in held.signers
        and key_.owner == person.username
        and key_.signing
        and not key_.revoked
        and (key_.valid_from is None or key_.valid_from <= NOW)
        and key_.valid_until > NOW
        and not elsewhere
    )


def run(reference, policy, data, ids) -> Evaluation:
    return evaluate(reference, policy, data, ids, now=NOW)


@settings(PROPERTY, max_examples=400)
@given(scenarios)
def test_property_a_team_is_satisfied_exactly_by_an_active_member_signing_in_their_role(
    scenario,
):
    reference, policy, data, ids = scenario
    result = run(*scenario)
    hex_digest = expected_digest(reference, data)
    root_ok = data.root_pinned or policy.trust_on_first_use
    required = [quota.team for quota in policy.default.requirement.teams]
    assert [t.team for t in result.teams] == required
    for team in result.teams:
        if team.satisfied:
            # (1) Only if some match is an active member whose own role holds the digest,
            # and every match named is such a member.
            assert root_ok
            assert hex_digest is not None
            assert team.signers
            assert team.not_counted == ()
            for match in team.signers:
                assert match.role == f"targets/{match.username}"
                assert counts(reference, data, ids, hex_digest, team.team, match.role, match.key_id)
            assert len({m.username for m in team.signers}) == len(team.signers)
        else:
            assert team.signers == ()
            # And conversely: such a member always satisfies the team.
            assert not (
                root_ok
                and hex_digest is not None
                and any(
                    counts(reference, data, ids, hex_digest, team.team, name, key_id)
                    for name in data.roles
                    for key_id in data.roles[name].signers
                )
            )
    if hex_digest is None:
        assert not result.allowed
    elif required:
        assert result.allowed == all(t.satisfied for t in result.teams)
    else:
        assert result.allowed == root_ok


@PROPERTY
@given(scenarios)
def test_property_removing_or_revoking_a_key_never_allows_more(scenario):
    reference, policy, data, ids = scenario
    before = run(*scenario)
    for key_id, key_ in ids.keys.items():
        removed = {k: v for k, v in ids.keys.items() if k != key_id}
        revoked = {**ids.keys, key_id: dataclasses.replace(key_, revoked=True)}
        for keys in (removed, revoked):
            after = run(reference, policy, data, dataclasses.replace(ids, keys=keys))
            assert before.allowed or not after.allowed
            for old, new in zip(before.teams, after.teams, strict=True):
                assert old.satisfied or not new.satisfied


@PROPERTY
@given(scenarios)
def test_property_adding_a_replay_never_allows_more(scenario):
    reference, policy, data, ids = scenario
    before = run(*scenario)
    for fingerprint in sorted({held.fingerprint for held in data.roles.values()}):
        for place in PLACES:
            places = ids.replays.get(fingerprint, ())
            if place in places:
                continue
            replays = {**ids.replays, fingerprint: (*places, place)}
            after = run(reference, policy, data, dataclasses.replace(ids, replays=replays))
            assert before.allowed or not after.allowed
            for old, new in zip(before.teams, after.teams, strict=True):
                assert old.satisfied or not new.satisfied
