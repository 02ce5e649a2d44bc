"""Attacks on the content-trust policy, made as an attacker would make them: the real
``notary`` CLI with keys from real Gatehouse bundles, and role files fetched and uploaded over
plain HTTP to a real notary-server, as anyone with push access could.

Each attack must end in ``denied``, from the explain API and both admission webhooks alike
(``SigningWorld.decision`` checks that they agree), with the reason the explanation gives.
"""

import json

import pytest

from accounts.models import Team
from audit.models import AuditEntry
from policy.inputs import evaluation_inputs_changed
from tests.policy.signing import RELEASES, SIZE, SigningWorld, team
from trust.models import CustodyKey

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

D = "d4" * 32  # the digest under attack
E = "e5" * 32  # another image


def reasons_of(result: dict, name: str) -> list[str]:
    return [entry["reason"] for entry in team(result, name)["not_counted"]]


def denied(world: SigningWorld, image: str) -> dict:
    """Denied by the explain API and by both webhooks; the explanation."""
    assert world.decision(image) == "denied"
    result = world.evaluate(image)
    assert result["decision"] == "denied", result
    assert result["allowed"] is False
    return result


def certificate_file(world: SigningWorld, name: str) -> str:
    """``name``'s signing certificate, as anyone can read it from a delegation (or a bundle)."""
    path = world.tmp / f"{name}-cert.pem"
    path.write_text(world.people[name].key.certificate)
    return str(path)


def signature_key_ids(raw: bytes) -> set[str]:
    return {signature["keyid"] for signature in json.loads(raw)["signatures"]}


def targets_of(raw: bytes) -> dict:
    return json.loads(raw)["signed"]["targets"]


# --- 1. Laundering through a shared role --------------------------------------------------


def test_a_signer_in_two_teams_cannot_launder_a_signature_for_the_other_team(world):
    """moby (dev) signs 2.0; ops (ci and dev) pushes his own tag. With team roles, ops's push
    re-signed the shared role holding moby's entry, and it counted for ci. Now there is no
    shared role: ops's push re-signs only targets/releases (which never counts) and his own
    role, so 2.0 stays moby's alone, and moby is not in ci."""
    moby = world.person("moby", "dev")
    ops = world.person("ops", "ci", "dev")
    gun = world.repository("ci", "dev")
    world.policy("ci")

    world.sign("moby", gun, "2.0", D)
    result = denied(world, f"{gun}:2.0")
    assert team(result, "ci")["not_counted"] == [
        {
            "reason": "not_in_team",
            "detail": f"moby signed it in {moby.role}, but is not in ci",
            "username": "moby",
            "role": moby.role,
            "key_id": moby.key.id,
        }
    ]
    moby_file = world.fetch(gun, moby.role)

    world.sign("ops", gun, "7.0", E)  # ops publishes his own tag, as a docker push does

    assert world.decision(f"{gun}:7.0") == "allowed"  # his own tag passes: his own signature
    # His push re-signed targets/releases, which still names moby's 2.0 ...
    releases = world.fetch(gun, RELEASES)
    assert targets_of(releases).keys() == {"2.0", "7.0"}
    assert ops.key.tuf_key_id in signature_key_ids(releases)
    # ... but no role that counts: his own holds only his tag, moby's is untouched.
    assert targets_of(world.fetch(gun, ops.role)).keys() == {"7.0"}
    assert world.fetch(gun, moby.role) == moby_file
    result = denied(world, f"{gun}:2.0")
    (ci,) = result["teams"]
    assert ci["satisfied"] is False
    assert ci["signers"] == []
    assert reasons_of(result, "ci") == ["not_in_team"]
    assert ci["not_counted"][0]["username"] == "moby"
    assert result["reasons"][0] == "image did not meet required signing policy"
    assert f"moby signed it in {moby.role}, but is not in ci" in result["reasons"][1]
    assert "ops" not in result["reasons"][1]

    # Nor can ops put moby's entry into a role that counts without signing it himself.
    # moby's role takes moby's keys alone: the CLI, holding no key for it, publishes nothing
    # to it (it drops the change and still says it published) ...
    world.cli(ops.trust_dir, "addhash", gun, "2.0", SIZE, "--sha256", D, "-r", moby.role, "-p")
    assert world.fetch(gun, moby.role) == moby_file
    # ... and a copy of moby's signed file under ops's role does not verify there.
    assert world.upload(gun, {ops.role: moby_file}) >= 400
    assert targets_of(world.fetch(gun, ops.role)).keys() == {"7.0"}
    assert reasons_of(denied(world, f"{gun}:2.0"), "ci") == ["not_in_team"]


def test_a_publishers_releases_file_replayed_as_their_own_role_does_not_count(world):
    """The attacker's way to put moby's entry into ops's role without ops signing it there.
    Every push by ops re-signs targets/releases, which names every signer's tags (moby's
    2.0 too), with ops's key; ops's own role takes that same key. moby (dev only, a
    publisher) uploads that releases file as targets/ops, which notary-server accepts (ops's
    key signed those bytes, at a higher version), then publishes releases again so that the
    releases bytes are gone before Gatehouse reads the repository. ops never signed 2.0 in
    his own role: it must stay denied for ci."""
    moby = world.person("moby", "dev")
    ops = world.person("ops", "ci", "dev")
    gun = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("moby", gun, "2.0", D)
    assert reasons_of(denied(world, f"{gun}:2.0"), "ci") == ["not_in_team"]

    world.sign("ops", gun, "7.0", E)  # a docker push by ops; nothing deploys meanwhile
    signed_by_ops = world.fetch(gun, RELEASES)
    assert targets_of(signed_by_ops).keys() == {"2.0", "7.0"}
    assert signature_key_ids(signed_by_ops) == {ops.key.tuf_key_id}
    assert world.version(gun, RELEASES) > world.version(gun, ops.role)
    assert world.upload(gun, {ops.role: signed_by_ops}) in (200, 201)
    assert world.fetch(gun, ops.role) == signed_by_ops  # ops's role now "names" 2.0
    world.sign("moby", gun, "9.9", E, RELEASES)  # releases moves on: those bytes are gone

    result = denied(world, f"{gun}:2.0")
    (ci,) = result["teams"]
    assert ci["signers"] == []
    assert any(
        (entry["reason"], entry["username"], entry["role"]) == ("not_in_team", "moby", moby.role)
        for entry in ci["not_counted"]
    )


# --- 2. Role-name replay: a signer's file under a nested role -------------------------------


def test_a_file_replayed_under_a_nested_role_is_no_signers_own_role(world):
    """mallory, a signer of Q, delegates ``targets/mallory/x`` to alice's certificate (it is
    public) and uploads alice's signed file from P as that role. Notary accepts it, since
    alice's key did sign those bytes; but the role is nobody's own, and the bytes are
    alice's P file copied."""
    alice = world.person("alice", "ci")
    mallory = world.person("mallory", "dev")
    p = world.repository("ci")
    q = world.repository("dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    assert world.decision(f"{p}:1.0") == "allowed"  # Gatehouse has read alice's P file
    alice_file = world.fetch(p, alice.role)

    nested = f"{mallory.role}/x"
    world.sign("mallory", q, "1.0", D, RELEASES)  # releases in Q names D for 1.0
    world.cli(
        mallory.trust_dir,
        "delegation",
        "add",
        q,
        nested,
        certificate_file(world, "alice"),
        "--all-paths",
        "-p",
    )
    assert world.upload(q, {nested: alice_file}) in (200, 201)
    assert world.fetch(q, nested) == alice_file  # the server took it as it is

    result = denied(world, f"{q}:1.0")
    (ci,) = result["teams"]
    assert ci["satisfied"] is False
    assert ci["signers"] == []
    # Evaluations do not even read nested roles: nothing in them counts. What is left is
    # mallory's releases entry, which never counts either.
    assert [n["reason"] for n in ci["not_counted"]] == ["releases_only"]
    assert "by mallory" in ci["not_counted"][0]["detail"]

    # A nested role never counts, so Gatehouse does not remember what it holds: the copy
    # cannot make alice's genuine P file a "replay", and mallory cannot deny her image.
    assert world.decision(f"{p}:1.0") == "allowed"
    assert not AuditEntry.objects.filter(action="trust.replay_detected").exists()


# --- 3. Same-name replay across repositories ----------------------------------------------


def test_a_file_replayed_under_the_same_role_in_another_repository_does_not_count(world):
    """alice signs both P and Q. Her signed file from P is uploaded as her role in Q, where
    releases (signed by mallory) names the same digest. The signature verifies in Q, since
    it covers neither the role's name nor the GUN; only Gatehouse's memory of the bytes
    tells the copy apart."""
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci")
    q = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    alice_file = world.fetch(p, alice.role)
    assert world.decision(f"{p}:1.0") == "allowed"  # Gatehouse reads P first

    world.sign("mallory", q, "1.0", D, RELEASES)
    assert world.upload(q, {alice.role: alice_file}) in (200, 201)
    assert world.fetch(q, alice.role) == alice_file

    result = denied(world, f"{q}:1.0")
    (ci,) = result["teams"]
    assert ci["signers"] == []
    assert ci["not_counted"] == [
        {
            "reason": "replayed",
            "detail": f"{alice.role} of alice is replayed from {p} {alice.role}",
            "username": "alice",
            "role": alice.role,
            "key_id": None,
        }
    ]
    assert f"replayed from {p} {alice.role}" in result["reasons"][1]
    entry = AuditEntry.objects.get(action="trust.replay_detected")
    assert entry.target_id == q
    assert entry.after["seen_under"] == [f"{p} {alice.role}", f"{q} {alice.role}"]

    # Once the same bytes are seen in both places, neither counts: Gatehouse cannot tell
    # which copy is the original from the bytes alone, and a replay that still counted
    # somewhere would break the promise that a signature counts only where it was made.
    # The promise wins over availability: P:1.0 is denied too, until alice signs again.
    result = denied(world, f"{p}:1.0")
    assert team(result, "ci")["not_counted"][0]["reason"] == "replayed"
    assert f"replayed from {q} {alice.role}" in result["reasons"][1]

    # alice signs her role in P again (``notary witness``: the same targets, a new version):
    # new signed bytes, seen nowhere else. (Adding 1.0 = D again would publish nothing.)
    version = world.version(p, alice.role)
    world.cli(alice.trust_dir, "witness", p, alice.role, "-p")
    assert world.version(p, alice.role) == version + 1
    assert world.decision(f"{p}:1.0") == "allowed"
    assert reasons_of(denied(world, f"{q}:1.0"), "ci") == ["replayed"]


def test_a_replay_one_image_of_a_review_finds_counts_for_the_images_after_it(world):
    """The copy of alice's file from P in Q is first read by an admission review whose
    first image is Q's genuine 2.0, signed by bob: reading Q for it finds the replay. The
    review's later image, Q:1.0, which only the copy signs, must not pass on identities
    the review read before the replay was known."""
    alice = world.person("alice", "ci")
    world.person("bob", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci")
    q = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    assert world.decision(f"{p}:1.0") == "allowed"
    world.sign("bob", q, "2.0", E)
    assert world.decision(f"{q}:2.0") == "allowed"

    world.sign("mallory", q, "1.0", D, RELEASES)
    assert world.upload(q, {alice.role: world.fetch(p, alice.role)}) in (200, 201)

    assert world.admission(f"{q}:2.0", f"{q}:1.0") == {"validate": False, "mutate": False}
    assert reasons_of(denied(world, f"{q}:1.0"), "ci") == ["replayed"]


def test_an_older_version_gatehouse_never_read_replayed_to_another_repository(world):
    """The attacker's choice of file for the replay above: one Gatehouse has never read.
    alice signs 1.0 = D in P, then 1.1 before anything deploys, so the first version of her
    P file is never read by Gatehouse (it reads the current files only). Copied into Q as
    her role, those bytes are still a copy of a file signed for P."""
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci")
    q = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    first = world.fetch(p, alice.role)  # anyone may pull it while it is current
    world.sign("alice", p, "1.1", E, alice.role)
    assert world.decision(f"{p}:1.0") == "allowed"  # Gatehouse reads P (its second version)

    world.sign("mallory", q, "1.0", D, RELEASES)
    assert world.upload(q, {alice.role: first}) in (200, 201)
    assert world.fetch(q, alice.role) == first

    result = denied(world, f"{q}:1.0")
    assert team(result, "ci")["signers"] == []


# --- 4. Repositories Gatehouse does not manage -------------------------------------------


def pinned_key_ids(root_keys: dict[str, list[str]], gun: str) -> list[str] | None:
    """What Docker pins ``gun`` to by Notary's rule: the exact GUN, else the longest prefix."""
    if gun in root_keys:
        return root_keys[gun]
    prefixes = [p for p in root_keys if p.endswith("*") and gun.startswith(p[:-1])]
    return root_keys[max(prefixes, key=len)] if prefixes else None


@pytest.mark.parametrize("trust_on_first_use", [False, True], ids=["enforced", "tofu"])
@pytest.mark.parametrize("how", ["replayed", "signed"])
def test_a_repository_made_with_the_cli_alone_counts_only_on_trust_on_first_use(
    world, settings, trust_on_first_use, how
):
    """An outsider makes a repository with the CLI alone, delegates alice's own role name
    to her certificate and either replays her P file there or has her sign. Nothing pins
    its root, so nothing in it counts unless trust on first use is allowed; then the rule
    applies as for any repository (a replay still never counts)."""
    settings.GATEHOUSE_TRUST_ON_FIRST_USE = trust_on_first_use
    alice = world.person("alice", "ci")
    p = world.repository("ci")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    assert world.decision(f"{p}:1.0") == "allowed"

    outsider = world.tmp / "outsider"
    gun = f"test.gatehouse/outside-{p.rsplit('/', 1)[1]}"
    world.cli(outsider, "init", gun, "-p")
    world.cli(outsider, "key", "rotate", gun, "snapshot", "-r")
    world.cli(outsider, "addhash", gun, "1.0", SIZE, "--sha256", D, "-p")  # into targets
    world.cli(
        outsider,
        "delegation",
        "add",
        gun,
        alice.role,
        certificate_file(world, "alice"),
        "--all-paths",
        "-p",
    )
    if how == "replayed":
        assert world.upload(gun, {alice.role: world.fetch(p, alice.role)}) in (200, 201)
    else:
        world.sign("alice", gun, "1.0", D, alice.role)
    assert targets_of(world.fetch(gun, alice.role)).get("1.0") is not None

    image = f"{gun}:1.0"
    result = world.evaluate(image)
    assert result["root_pinned"] is False
    assert result["digest"] == f"sha256:{D}"
    if not trust_on_first_use:
        result = denied(world, image)
        assert reasons_of(result, "ci") == ["root_not_pinned"]
        assert result["reasons"][1].startswith(f"the root of {gun} is not pinned")
    elif how == "replayed":
        result = denied(world, image)
        assert reasons_of(result, "ci") == ["replayed"]
        assert f"replayed from {p} {alice.role}" in result["reasons"][1]
    else:
        # Not an attack: alice herself signed in her own role with her own key, and trust
        # on first use was chosen, so the rule counts it as in any other repository.
        assert world.decision(image) == "allowed"
        assert team(world.evaluate(image), "ci")["signers"] == [
            {"username": "alice", "role": alice.role, "key_id": alice.key.id}
        ]
    if how == "replayed" and trust_on_first_use:
        # Where the outsider's repository can count, it is remembered: alice's P bytes seen
        # a second time make her P file stop counting too (availability yields to the
        # promise; she signs again to restore it).
        assert reasons_of(denied(world, f"{p}:1.0"), "ci") == ["replayed"]
    else:
        # Where it cannot count, it is not remembered, so a copy there cannot turn alice's
        # genuine P file into a replay.
        assert world.decision(f"{p}:1.0") == "allowed"

    # Docker pins nothing for it either: no entry and no wildcard puts Gatehouse's root key
    # (or any other) on this GUN, while Gatehouse's own repository P is pinned exactly.
    root = world.api(world.admin).get("/api/v1/trust/root/")
    assert root.status_code == 200, root.content
    body = root.json()
    root_keys = body["daemon_json"]["content-trust"]["trust-pinning"]["root-keys"]
    gatehouse_root = CustodyKey.objects.get(kind=CustodyKey.Kind.ROOT).key_id
    assert body["root_key_id"] == gatehouse_root
    assert pinned_key_ids(root_keys, gun) is None
    assert not [pattern for pattern in root_keys if "*" in pattern]
    # P is pinned to its own root certificate, by the ID root.json names it with: the one
    # Docker's trust pinning compares.
    p_root = json.loads(world.fetch(p, "root"))["signed"]["roles"]["root"]["keyids"]
    assert pinned_key_ids(root_keys, p) == p_root


# --- 7. Deleting a team the policy names ------------------------------------------------


def test_deleting_a_team_the_policy_names_is_refused_and_changes_no_decision(world):
    """Deleting a team the default rule requires would leave the rule naming a team that no
    longer exists, with no policy version to show the change. Both deletions are refused,
    naming the policy, and the decision does not change."""
    moby = world.person("moby", "dev")
    world.person("jenkins", "ci")
    gun = world.repository("ci", "dev")
    world.policy("ci", "dev")
    world.sign("moby", gun, "2.0", D)
    result = denied(world, f"{gun}:2.0")
    assert team(result, "dev")["satisfied"] is True
    assert team(result, "ci")["satisfied"] is False

    for name in ("dev", "ci"):
        answer = world.api(world.admin).delete(f"/api/v1/teams/{name}/")
        assert answer.status_code == 409, answer.content
        body = answer.json()
        assert "the content-trust policy (a rule requires it)" in body["used_by"]
        assert "content-trust policy" in body["detail"]
        assert Team.objects.filter(name=name).exists()

    evaluation_inputs_changed()  # whatever was cached, read the policy and teams again
    result = denied(world, f"{gun}:2.0")
    assert {entry["team"] for entry in result["teams"]} == {"ci", "dev"}
    assert team(result, "dev")["signers"] == [
        {"username": "moby", "role": moby.role, "key_id": moby.key.id}
    ]
    assert team(result, "ci")["satisfied"] is False
