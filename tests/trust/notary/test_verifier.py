"""What ``trust.notary.verifier`` checks below the root (docs/notary-protocol.md, "Reading"):
timestamp, snapshot, targets and delegations, against repositories built in memory
(``simulator.py``)."""

import base64
import json
from dataclasses import replace

import pytest

from tests.trust.notary.simulator import FUTURE, GUN, PAST, FakeTransport, file_named, read, refused
from trust.notary.errors import InvalidMetadata
from trust.notary.keys import generate_ecdsa_key, plain_signing_key
from trust.notary.metadata import Delegation, Targets
from trust.notary.reader import Reader
from trust.notary.verifier import Verifier

# -- timestamp and snapshot ----------------------------------------------------------------


def test_an_expired_timestamp_is_refused(sim):
    sim.expires["timestamp"] = PAST

    refused(sim.publish(), "timestamp", "expired at")


def test_a_rolled_back_timestamp_is_refused(sim):
    sim.versions["timestamp"] = 3

    error = refused(sim.publish(), "timestamp", "rollback", known_versions={"timestamp": 5})

    assert "version 3 is older than the known 5" in str(error)


def test_a_timestamp_with_a_wrong_signature_is_refused(sim):
    files = sim.publish()
    document = json.loads(files["timestamp.json"])
    signature = base64.b64decode(document["signatures"][0]["sig"])
    document["signatures"][0]["sig"] = base64.b64encode(bytes([signature[0] ^ 1]) + signature[1:])
    document["signatures"][0]["sig"] = document["signatures"][0]["sig"].decode()
    files["timestamp.json"] = json.dumps(document, separators=(",", ":")).encode()

    refused(files, "timestamp", "not signed by a threshold of the timestamp keys")


def test_an_oversized_timestamp_is_refused(sim):
    files = sim.publish()
    files["timestamp.json"] = files["timestamp.json"] + b" " * (1024 * 1024)

    refused(files, "timestamp", "larger than 1048576 bytes")

    verifier = Verifier(GUN)
    verifier.update_root(files["root.json"])
    with pytest.raises(InvalidMetadata, match="larger than") as caught:
        verifier.update_timestamp(files["timestamp.json"])
    assert caught.value.role == "timestamp"


def test_a_deeply_nested_timestamp_is_invalid_not_a_crash(sim):
    files = sim.publish()
    files["timestamp.json"] = b"[" * 200_000

    refused(files, "timestamp", "nested too deeply")


def test_a_snapshot_naming_another_root_is_refused(sim):
    files = sim.publish()
    sim.sign_root()  # root v2, signed as it should be, but the snapshot names v1
    files["root.json"] = sim.roots[-1]

    refused(files, "snapshot", "names another root")


# -- targets -------------------------------------------------------------------------------


def test_tampered_targets_bytes_do_not_match_the_snapshot_hash(sim):
    files = sim.publish()
    name = file_named(files, "targets")
    files[name] = files[name].replace(b'"version":1', b'"version":7')

    refused(files, "targets", "sha256 does not match the snapshot")


def test_targets_signed_by_a_key_outside_root_are_refused(sim):
    sim.signers["targets"] = [plain_signing_key(generate_ecdsa_key())]

    refused(sim.publish(), "targets", "not signed by a threshold of the root's targets keys")


def test_expired_targets_are_fatal(sim, teams):
    sim.expires["targets"] = PAST

    refused(sim.publish(), "targets", "expired at")


# -- delegations ---------------------------------------------------------------------------


def test_an_expired_delegation_is_skipped_with_a_warning(sim, teams):
    sim.expires["targets/ci"] = PAST

    result = read(sim.publish())

    assert "targets/ci" not in result.roles
    assert "targets/releases" in result.roles
    (warning,) = result.warnings
    assert warning.role == "targets/ci"
    assert "expired at" in warning.message


def test_a_tampered_or_wrongly_signed_delegation_is_skipped(sim, teams):
    sim.signers["targets/releases"] = [plain_signing_key(generate_ecdsa_key())]
    files = sim.publish()
    ci = file_named(files, "targets/ci")
    files[ci] = files[ci].replace(b"ci/build-7", b"ci/build-8")

    result = read(files)

    assert list(result.roles) == ["targets"]
    assert {(w.role, w.message.split(" ")[0]) for w in result.warnings} == {
        ("targets/releases", "not"),
        ("targets/ci", "sha256"),
    }
    assert result.lookup("v1.0").role == "targets"


def test_a_delegation_under_threshold_of_distinct_keys_is_skipped(sim):
    first, second = (plain_signing_key(generate_ecdsa_key()) for _ in range(2))
    # Two keys declared, threshold 2, but one key signed twice: it counts once.
    sim.delegate("targets/releases", [first, first], threshold=2, declared_keys=[first, second])

    result = read(sim.publish())

    assert "targets/releases" not in result.roles
    assert "not signed by 2 of its keys in targets" in result.warnings[0].message


def test_a_role_declared_with_fewer_keys_than_its_threshold_is_skipped(sim):
    key = plain_signing_key(generate_ecdsa_key())
    sim.delegate("targets/releases", [key], threshold=2)
    transport = FakeTransport(sim.publish())

    result = Reader(transport).read(GUN)

    assert "targets/releases" not in result.roles
    assert str(result.warnings[0]) == "targets/releases: fewer keys than its threshold 2 in targets"
    assert len(transport.requests) == 4  # the role file is never fetched


def test_targets_outside_a_roles_paths_are_ignored(sim, teams):
    sim.add_target("targets/ci", "prod/app", b"smuggled")

    result = read(sim.publish())

    assert set(result.roles["targets/ci"].targets) == {"ci/build-7"}
    assert result.find("prod/app") is None


def test_a_stale_snapshot_entry_for_an_undeclared_role_is_ignored(sim):
    sim.roles["targets/old"] = Targets(expires=FUTURE, version=4)
    sim.signers["targets/old"] = [plain_signing_key(generate_ecdsa_key())]
    sim.add_target("targets/old", "v0.9", b"gone")
    transport = FakeTransport(sim.publish())

    result = Reader(transport).read(GUN)

    assert list(result.roles) == ["targets"]
    assert result.warnings == ()
    assert not any("targets/old" in path for _, path, _ in transport.requests)


def test_a_declared_role_never_published_is_skipped_silently(sim):
    sim.delegate("targets/releases", [plain_signing_key(generate_ecdsa_key())])
    del sim.roles["targets/releases"]

    result = read(sim.publish())

    assert list(result.roles) == ["targets"]
    assert result.warnings == ()


def test_a_delegation_that_is_not_a_direct_child_is_skipped(sim):
    key = plain_signing_key(generate_ecdsa_key())
    sim.delegate("targets/releases", [key])
    sim.roles["targets"] = replace(
        sim.roles["targets"],
        delegations=(Delegation("targets/releases/deep", (key.key_id,)),),
    )
    sim.roles["targets/releases/deep"] = Targets(expires=FUTURE, version=1)
    sim.signers["targets/releases/deep"] = [key]

    result = read(sim.publish())

    assert list(result.roles) == ["targets"]
    assert result.warnings[0].message == "not a valid direct child of targets"
