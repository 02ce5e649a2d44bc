"""The verifying reader's I/O (docs/notary-protocol.md, "Reading") against repositories
built in memory (``simulator.py``): what it fetches and in which order, the root walk, size
limits, and transport errors."""

import base64

import pytest

from tests.trust.notary.simulator import GUN, FakeTransport, file_named, read, refused, sha256
from trust.notary.errors import InvalidMetadata, NotFound
from trust.notary.keys import generate_ecdsa_key, plain_signing_key, root_signing_key
from trust.notary.reader import Reader
from trust.notary.verified import ReaderLimits, RootPin

# -- what a read fetches, and in which order -----------------------------------------------


def test_a_valid_repository_reports_targets_and_signers_per_role(sim, teams):
    transport = FakeTransport(sim.publish())

    result = Reader(transport).read(GUN)

    assert list(result.roles) == ["targets", "targets/releases", "targets/ci"]
    assert result.roles["targets/releases"].signers == {k.key_id for k in teams["releases"]}
    assert result.roles["targets/ci"].signers == {teams["ci"].key_id}
    assert result.roles["targets"].signers == {sim.targets_key.key_id}
    assert result.roles["targets/ci"].targets["ci/build-7"].length == len(b"build seven")
    found = result.lookup("v1.0")
    assert found is not None
    assert found.role == "targets/releases"
    assert found.target.hashes["sha256"] == base64.b64encode(sha256(b"release one")).decode()
    assert result.lookup("ci/build-7") is None  # Docker reads only releases and targets
    assert result.find("ci/build-7").role == "targets/ci"
    assert result.warnings == ()
    assert dict(result.versions) == {
        "root": 1,
        "timestamp": 1,
        "snapshot": 1,
        "targets": 1,
        "targets/releases": 1,
        "targets/ci": 1,
    }
    assert {scope for _, _, scope in transport.requests} == {f"repository:{GUN}:pull"}


def test_requests_follow_the_cli_order_by_hash(sim, teams):
    files = sim.publish()
    transport = FakeTransport(files)

    Reader(transport).read(GUN)

    tails = [path.removeprefix(f"/v2/{GUN}/_trust/tuf/") for _, path, _ in transport.requests]
    assert tails == [
        "root.json",
        "timestamp.json",
        file_named(files, "snapshot"),
        file_named(files, "targets"),
        file_named(files, "targets/releases"),
        file_named(files, "targets/ci"),
    ]


def test_nested_delegations_are_walked_depth_first_with_narrowed_paths(sim):
    team, nightly, later = (plain_signing_key(generate_ecdsa_key()) for _ in range(3))
    sim.delegate("targets/team", [team], paths=("team/",))
    sim.delegate("targets/team/nightly", [nightly], paths=("team/nightly/", "elsewhere/"))
    sim.delegate("targets/later", [later])
    sim.add_target("targets/team/nightly", "team/nightly/1", b"n1")
    sim.add_target("targets/team/nightly", "elsewhere/1", b"e1")

    result = read(sim.publish())

    assert list(result.roles) == [
        "targets",
        "targets/team",
        "targets/team/nightly",
        "targets/later",
    ]
    assert result.roles["targets/team/nightly"].paths == ("team/nightly/",)
    assert set(result.roles["targets/team/nightly"].targets) == {"team/nightly/1"}


def test_known_versions_from_a_read_accept_the_same_repository(sim, teams):
    files = sim.publish()

    again = read(files, known_versions=read(files).versions)

    assert again.roles.keys() == {"targets", "targets/releases", "targets/ci"}


# -- the root walk -------------------------------------------------------------------------


def test_a_pinned_key_rotated_out_is_followed_through_the_root_chain(sim):
    old_key = sim.root_keys[0]
    new_key = root_signing_key(generate_ecdsa_key(), GUN)
    sim.root_keys = [new_key]
    sim.sign_root(signers=[old_key, new_key])
    transport = FakeTransport(sim.publish())

    result = Reader(transport).read(GUN, pinned_root=RootPin.keys(old_key.key_id))

    assert result.root_pinned is True
    assert result.root_key_ids == {new_key.key_id}
    assert result.versions["root"] == 2
    tails = [path.rsplit("/", 1)[-1] for _, path, _ in transport.requests[:3]]
    assert tails == ["root.json", "1.root.json", "2.root.json"]


def test_a_root_walk_longer_than_the_limit_is_refused(sim):
    old_key = sim.root_keys[0]
    for _ in range(3):
        previous = sim.root_keys[0]
        sim.root_keys = [root_signing_key(generate_ecdsa_key(), GUN)]
        sim.sign_root(signers=[previous, sim.root_keys[0]])
    reader = Reader(FakeTransport(sim.publish()), limits=ReaderLimits(max_root_versions=3))

    with pytest.raises(InvalidMetadata, match="beyond the 3 root versions") as caught:
        reader.read(GUN, pinned_root=RootPin.keys(old_key.key_id))
    assert caught.value.role == "root"


# -- size limits ---------------------------------------------------------------------------


def test_a_targets_file_larger_than_the_snapshot_says_is_refused(sim):
    files = sim.publish()
    name = file_named(files, "targets")
    files[name] += b" "

    refused(files, "targets", "larger than")


def test_an_oversized_delegation_is_skipped(sim, teams):
    files = sim.publish()
    name = file_named(files, "targets/ci")
    files[name] += b" "

    result = read(files)

    assert "targets/ci" not in result.roles
    assert result.warnings[0].role == "targets/ci"
    assert "larger than" in result.warnings[0].message


# -- transport errors pass through ---------------------------------------------------------


def test_a_gun_without_trust_data_is_not_found():
    with pytest.raises(NotFound, match="has no trust data") as caught:
        read({})
    assert caught.value.gun == GUN


def test_a_missing_snapshot_passes_through_as_not_found(sim):
    files = sim.publish()
    del files[file_named(files, "snapshot")]

    with pytest.raises(NotFound) as caught:
        read(files)
    assert caught.value.role == "snapshot"
