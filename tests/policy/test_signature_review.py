"""Attacks from the independent review of one-role-per-user, each fixed: a GUN deleted and
made again, an old team role name given to a user, nested roles that bury the signers'
own roles, a file the server cannot serve by its hash. Real notary-server, CLI and plain
HTTP uploads."""

import json
import shutil
import time

import pytest

from tests.policy.signing import RELEASES, SIZE
from trust import trust_data
from trust.models import HistoryCursor, Repository, RoleFileSighting
from trust.services.drift import drift_check
from trust.services.repositories import repository_create, repository_delete

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

D = "d4" * 32
E = "e5" * 32


def recreate(world, gun, *teams):
    repository_delete(actor=world.admin, repository=Repository.objects.get(gun=gun))
    world.sync()
    assert not Repository.objects.filter(gun=gun).exists()
    trust_data.forget()
    repository_create(actor=world.admin, gun=gun, signer_team_names=list(teams))
    world.sync()


def test_recreated_gun_with_unwalked_history(world):
    """P is deleted while its changefeed holds publications Gatehouse never walked; the
    same GUN is made again and alice signs in it."""
    world.person("alice", "ci")
    p = world.repository("ci")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)  # never evaluated: the cursor is behind
    recreate(world, p, "ci")
    # alice's trust directory caches the old repository: she starts afresh
    shutil.rmtree(world.people["alice"].trust_dir / "tuf", ignore_errors=True)
    world.sign("alice", p, "1.0", D)
    # The walk of what the deleted repository published neither fails nor stops later ones.
    assert drift_check(repository=Repository.objects.get(gun=p)) is None
    assert world.evaluate(f"{p}:1.0")["decision"] == "allowed"
    assert HistoryCursor.objects.get(gun=p).change_id > 0


def test_retracted_signature_resurrected_in_recreated_gun(world):
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    assert world.decision(f"{p}:1.0") == "allowed"
    old = world.fetch(p, alice.role)  # anyone can pull it
    world.sign("alice", p, "1.0", E, RELEASES, alice.role)  # alice retracts D
    assert world.evaluate(f"{p}:1.0")["digest"] == f"sha256:{E}"
    recreate(world, p, "ci", "dev")
    import shutil

    for name in ("alice", "mallory"):
        shutil.rmtree(world.people[name].trust_dir / "tuf", ignore_errors=True)
    # mallory, a publisher of the new P, puts D back in releases and alice's old file in her role
    world.sign("mallory", p, "1.0", D, RELEASES)
    assert world.upload(p, {alice.role: old}) in (200, 201)
    result = world.evaluate(f"{p}:1.0")
    assert result["decision"] == "denied", result


def test_an_unreserved_old_team_role_becomes_a_users_own_role(world):
    """Before the upgrade, team ``ops`` (members ops and moby) had role targets/ops in P;
    moby signed 2.0 there and ops's later publish re-signed the whole file with his key.
    The team was deleted before the upgrade, so the migration did not reserve its name, and
    the user ops gets role ``ops``. When ops becomes a signer of P the stored team file
    verifies with his key and is kept: moby's entry counts as ops's signature."""
    from trust import custody, selectors
    from trust.notary_access import notary_client
    from trust.services.repositories import repository_update_signer_teams
    from trust.services.runners import _desired_tuf_keys

    ops = world.person("ops", "ci")
    moby = world.person("moby", "dev")
    assert ops.role == "targets/ops"
    p = world.repository("dev")
    repo = Repository.objects.get(gun=p)
    desired = _desired_tuf_keys(repo)
    desired["targets/ops"] = selectors.tuf_keys([ops.key, moby.key])  # the old team role
    notary_client().set_delegations(
        p,
        desired,
        targets_key=custody.signing_key(repo.targets_key),
        custodian=custody.signing_key(custody.custodian_key()),
    )
    world.sign("moby", p, "2.0", D, RELEASES, "targets/ops")
    world.sign("ops", p, "7.0", E, "targets/ops")  # re-signs moby's 2.0 with ops's key
    # team ops deleted (old version): the next sync drops targets/ops
    assert drift_check(repository=repo) is not None
    world.sync()
    repo.refresh_from_db()
    assert "targets/ops" not in json.dumps(
        json.loads(world.fetch(p, "targets"))["signed"]["delegations"]["roles"]
    )
    # after the upgrade: ci becomes a signer team of P
    repository_update_signer_teams(
        actor=world.admin, repository=repo, signer_team_names=["dev", "ci"]
    )
    world.sync()
    world.policy("ci")
    result = world.evaluate(f"{p}:2.0")
    assert result["decision"] == "denied", result


def signer_key(world, name):
    from cryptography import x509

    from trust.notary.keys import SigningKey, certificate_tuf_key
    from trust.notary.private_keys import load_private_key_pem

    person = world.people[name]
    private = load_private_key_pem((person.trust_dir / "key.pem").read_text(), None)
    cert = x509.load_pem_x509_certificate(person.key.certificate.encode())
    return SigningKey(private, certificate_tuf_key(cert))


@pytest.mark.parametrize("n", [1000])
def test_a_publisher_buries_everyones_role_under_nested_releases_roles(world, n):
    """mallory (any signer) publishes targets/releases declaring n nested roles delegated to
    her key, and a file for each, in one upload. The reader stops after 1000 delegated roles
    (pre-order, releases first), so every signer's own role is skipped."""
    from trust.notary.metadata import (
        TARGETS_LIFETIME,
        Delegation,
        Targets,
        expires_in,
        sign,
    )

    world.person("alice", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    assert world.decision(f"{p}:1.0") == "allowed"
    key = signer_key(world, "mallory")
    releases = json.loads(world.fetch(p, RELEASES))["signed"]
    current = Targets.from_signed(releases, role=RELEASES)
    names = [f"{RELEASES}/x{i:04d}" for i in range(n)]
    body = Targets(
        expires=expires_in(TARGETS_LIFETIME),
        version=current.version + 1,
        targets=current.targets,
        delegation_keys={key.key_id: key.public},
        delegations=tuple(Delegation(name, (key.key_id,), 1, ("",)) for name in names),
    ).to_signed()
    files = {RELEASES: sign(body, [key])}
    empty = Targets(expires=expires_in(TARGETS_LIFETIME), version=1).to_signed()
    blob = sign(empty, [key])
    files.update(dict.fromkeys(names, blob))
    assert world.upload(p, files) in (200, 201)
    trust_data.forget()
    result = world.evaluate(f"{p}:1.0")
    assert result["decision"] == "allowed", result


def test_one_loosely_formatted_upload_denies_the_whole_repository_for_good(world):
    """mallory uploads her own role with JSON whitespace. notary-server names the compacted
    bytes in the snapshot but stores hers, so the file is not found by its hash. The reader
    treats that 404 as "no trust data" for the whole GUN, and the history walk stops at
    that snapshot forever, even after mallory publishes a proper file."""
    from trust.notary.metadata import TARGETS_LIFETIME, Targets, expires_in, sign

    world.person("alice", "ci")
    mallory = world.person("mallory", "dev")
    p = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    assert world.decision(f"{p}:1.0") == "allowed"
    key = signer_key(world, "mallory")
    body = Targets(expires=expires_in(TARGETS_LIFETIME), version=5).to_signed()
    loose = json.dumps(json.loads(sign(body, [key])), indent=2).encode()
    assert world.upload(p, {mallory.role: loose}) in (200, 201)
    trust_data.forget()
    # mallory (or anyone in her role) publishes a proper file: the current state is fine again
    body = Targets(expires=expires_in(TARGETS_LIFETIME), version=6).to_signed()
    assert world.upload(p, {mallory.role: sign(body, [key])}) in (200, 201)
    trust_data.forget()
    trust_data.forget()
    result = world.evaluate(f"{p}:1.0")
    assert result["decision"] == "allowed", result
    # The drift check reads it too, and goes on: it neither raises nor stops.
    assert drift_check(repository=Repository.objects.get(gun=p)) is None


def test_held_cross_repo_releases_copy_into_victims_role(world):
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci")
    q = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)  # unread by Gatehouse
    releases = world.fetch(p, RELEASES)  # signed by alice
    world.sign("mallory", q, "1.0", D, RELEASES)
    assert world.upload(q, {alice.role: releases}) in (200, 201)
    result = world.evaluate(f"{q}:1.0")
    assert result["decision"] == "denied"


def test_held_unpinned_gun_causes_no_writes(world):
    world.person("alice", "ci")
    world.policy("ci")
    outsider = world.tmp / "outsider"
    gun = "test.gatehouse/outside-nowrite-" + str(time.time_ns())
    world.cli(outsider, "init", gun, "-p")
    world.cli(outsider, "addhash", gun, "1.0", SIZE, "--sha256", D, "-p")
    before = (HistoryCursor.objects.count(), RoleFileSighting.objects.count())
    result = world.evaluate(f"{gun}:1.0")
    assert result["decision"] == "denied"
    assert (HistoryCursor.objects.count(), RoleFileSighting.objects.count()) == before


def test_held_own_role_names_tag_elsewhere(world):
    world.person("alice", "ci")
    world.person("mallory", "dev")
    p = world.repository("ci", "dev")
    world.policy("ci")
    world.sign("alice", p, "1.0", D)
    world.sign("mallory", p, "1.0", E, RELEASES)  # repoint the tag in releases
    result = world.evaluate(f"{p}:1.0")
    assert result["decision"] == "denied"
    assert world.evaluate(f"{p}@sha256:{D}")["decision"] == "allowed"
