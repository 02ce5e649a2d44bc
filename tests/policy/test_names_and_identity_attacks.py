"""Attacks on the name grammar (short, long and legacy spellings of one repository) and on
identity changes reaching the next evaluation, with the real notary-server and CLI."""

import uuid

import pytest

from accounts.models import Team
from accounts.services import team_member_remove, user_deactivate
from bundles.services import public_key_revoke, public_key_update
from tests.policy.signing import RELEASES
from trust import trust_data
from trust.models import Job, Repository, RoleFileSighting
from trust.services.drift import drift_check
from trust.services.jobs import job_create
from trust.services.repositories import repository_create, repository_delete

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

D = "d4" * 32
E = "e5" * 32


def legacy_repository(world, gun, *teams):
    """A row stored before the upgrade, under a short GUN, initialised on Notary under it."""
    repo = Repository.objects.create(gun=gun, created_by=world.admin)
    repo.signer_teams.set([Team.objects.get(name=t) for t in teams])
    job_create(kind=Job.Kind.INITIALIZE, repository=repo, actor=world.admin, cause="legacy")
    world.sync()
    return repo


def test_short_and_long_spellings_read_the_same_trust_data(world):
    world.person("alice", "ci")
    short = f"ci/{uuid.uuid4().hex}"
    repo, _ = repository_create(actor=world.admin, gun=short, signer_team_names=["ci"])
    world.sync()
    assert repo.gun == f"docker.io/{short}"
    world.policy("ci")
    world.sign("alice", repo.gun, "1.0", D)
    for image in (f"{short}:1.0", f"docker.io/{short}:1.0", f"index.docker.io/{short}:1.0"):
        assert world.decision(image) == "allowed", image


def test_legacy_short_gun_file_copied_into_the_normalised_repository(world):
    """Before the upgrade: repository stored as ``ci/x`` (Notary GUN ``ci/x``), alice signed
    D there, then retracted it (1.0 = E). After the upgrade an admin creates ``ci/x`` again
    (stored docker.io/ci/x) while the legacy row still exists; mallory, a publisher of the
    new one, uploads alice's old legacy file as her role there."""
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    short = f"ci/{uuid.uuid4().hex}"
    legacy_repository(world, short, "ci", "dev")
    world.policy("ci")
    world.sign("alice", short, "1.0", D)
    old = world.fetch(short, alice.role)
    world.sign("alice", short, "1.0", E, RELEASES, alice.role)  # retracts D
    # The legacy repository is walked by the drift check (managed)
    assert drift_check(repository=Repository.objects.get(gun=short)) is None
    assert RoleFileSighting.objects.filter(gun=short, role=alice.role).exists()

    new, _ = repository_create(actor=world.admin, gun=short, signer_team_names=["ci", "dev"])
    world.sync()
    world.sign("mallory", new.gun, "1.0", D, RELEASES)
    assert world.upload(new.gun, {alice.role: old}) in (200, 201)
    result = world.evaluate(f"{short}:1.0")
    assert result["decision"] == "denied", result


def test_legacy_short_gun_deleted_then_made_again_normalised(world):
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    short = f"ci/{uuid.uuid4().hex}"
    legacy_repository(world, short, "ci", "dev")
    world.policy("ci")
    world.sign("alice", short, "1.0", D)  # never evaluated, never drift-checked
    old = world.fetch(short, alice.role)
    world.sign("alice", short, "1.0", E, RELEASES, alice.role)  # retracts D
    repository_delete(actor=world.admin, repository=Repository.objects.get(gun=short))
    world.sync()
    trust_data.forget()
    new, _ = repository_create(actor=world.admin, gun=short, signer_team_names=["ci", "dev"])
    world.sync()
    world.sign("mallory", new.gun, "1.0", D, RELEASES)
    assert world.upload(new.gun, {alice.role: old}) in (200, 201)
    result = world.evaluate(f"{short}:1.0")
    assert result["decision"] == "denied", result


@pytest.mark.parametrize("change", ["revoke", "unmark", "leave", "deactivate"])
def test_identity_change_reaches_the_next_evaluation_without_jobs(world, change):
    alice = world.person("alice", "ci")
    gun = world.repository("ci")
    world.policy("ci")
    world.sign("alice", gun, "1.0", D)
    assert world.decision(f"{gun}:1.0") == "allowed"
    if change == "revoke":
        public_key_revoke(actor=world.admin, key=alice.key)
    elif change == "unmark":
        public_key_update(actor=world.admin, key=alice.key, is_signing_key=False)
    elif change == "leave":
        team_member_remove(actor=world.admin, team=Team.objects.get(name="ci"), user=alice.user)
    else:
        user_deactivate(actor=world.admin, user=alice.user)
    assert world.decision(f"{gun}:1.0") == "denied"
    world.sync()
    assert world.decision(f"{gun}:1.0") == "denied"


def test_legacy_original_never_walked_copy_evaluated_first(world):
    alice = world.person("alice", "ci")
    world.person("mallory", "dev")
    short = f"ci/{uuid.uuid4().hex}"
    legacy_repository(world, short, "ci", "dev")
    world.policy("ci")
    world.sign("alice", short, "1.0", D)
    old = world.fetch(short, alice.role)
    world.sign("alice", short, "1.0", E, RELEASES, alice.role)
    new, _ = repository_create(actor=world.admin, gun=short, signer_team_names=["ci", "dev"])
    world.sync()
    world.sign("mallory", new.gun, "1.0", D, RELEASES)
    assert world.upload(new.gun, {alice.role: old}) in (200, 201)
    result = world.evaluate(f"index.docker.io/{short}:1.0")
    assert result["decision"] == "denied", result


def test_a_revoked_key_cannot_come_back_under_a_new_certificate(world):
    import base64
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from bundles.services import (
        KeyAlreadyRegistered,
        public_key_register,
        registration_challenge_issue,
    )
    from tests.factories import make_user

    alice = world.person("alice", "ci")
    pem = (alice.trust_dir / "key.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, None)
    public_key_revoke(actor=world.admin, key=alice.key)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=5))
        .sign(private, hashes.SHA256())
    )
    mallory = make_user("mallory")
    nonce = registration_challenge_issue(user=mallory).nonce
    sig = base64.b64encode(private.sign(nonce.encode(), ec.ECDSA(hashes.SHA256()))).decode()
    with pytest.raises(KeyAlreadyRegistered):
        public_key_register(
            actor=mallory,
            user=mallory,
            certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
            nonce=nonce,
            signature=sig,
            signing=True,
        )
