"""The verifying reader (docs/notary-protocol.md, "Reading") against repositories built in memory.

``Simulator`` plays the server, like python-tuf's ``RepositorySimulator``: it signs a root,
targets and delegations with the package's own writer pieces, signs the snapshot (ecdsa)
and timestamp (ed25519) itself, and ``FakeTransport`` serves the files by path.
"""

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from trust.notary.errors import InvalidMetadata, NotFound
from trust.notary.keys import (
    SigningKey,
    TufKey,
    canonical_key_id,
    generate_ecdsa_key,
    plain_signing_key,
    public_tuf_key,
    root_signing_key,
)
from trust.notary.metadata import (
    Delegation,
    RoleKeys,
    Root,
    TargetFile,
    Targets,
    file_hashes,
    format_expires,
    sign,
)
from trust.notary.reader import Reader, ReaderLimits, RootPin, Verifier
from trust.notary.transport import Transport

GUN = "registry.example.com/team/app"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
FUTURE = NOW + dt.timedelta(days=30)
PAST = NOW - dt.timedelta(days=1)


@dataclass(frozen=True)
class Ed25519Signer:
    """An ed25519 key that signs like ``SigningKey`` does (method ``eddsa``;
    docs/notary-protocol.md, "Signatures")."""

    private_key: ed25519.Ed25519PrivateKey

    @property
    def public(self) -> TufKey:
        return public_tuf_key(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> dict[str, str]:
        signature = base64.b64encode(self.private_key.sign(message)).decode()
        return {"keyid": self.key_id, "method": "eddsa", "sig": signature}


def _meta(raw: bytes) -> dict:
    return {"hashes": file_hashes(raw), "length": len(raw)}


class Simulator:
    """A Notary repository in memory: ``publish()`` gives the files a server would serve."""

    def __init__(self, gun: str = GUN, *, root_key: SigningKey | None = None) -> None:
        self.gun = gun
        self.root_keys = [root_key or root_signing_key(generate_ecdsa_key(), gun)]
        self.targets_key = plain_signing_key(generate_ecdsa_key())
        self.snapshot_key = plain_signing_key(generate_ecdsa_key())
        self.timestamp_key = Ed25519Signer(ed25519.Ed25519PrivateKey.generate())
        self.roots: list[bytes] = []
        self.roles: dict[str, Targets] = {"targets": Targets(expires=FUTURE, version=1)}
        self.signers: dict[str, list] = {"targets": [self.targets_key]}
        self.expires: dict[str, dt.datetime] = {}
        self.versions = {"snapshot": 1, "timestamp": 1}
        self.sign_root()

    def sign_root(self, signers: list[SigningKey] | None = None) -> None:
        """The next root version, naming ``self.root_keys``, signed by ``signers``."""
        keys = [*self.root_keys, self.targets_key, self.snapshot_key, self.timestamp_key]
        root = Root(
            keys={key.key_id: key.public for key in keys},
            roles={
                "root": RoleKeys(tuple(k.key_id for k in self.root_keys), 1),
                "targets": RoleKeys((self.targets_key.key_id,), 1),
                "snapshot": RoleKeys((self.snapshot_key.key_id,), 1),
                "timestamp": RoleKeys((self.timestamp_key.key_id,), 1),
            },
            expires=self.expires.get("root", FUTURE),
            version=len(self.roots) + 1,
        )
        self.roots.append(sign(root.to_signed(), signers or self.root_keys))

    def delegate(
        self,
        role: str,
        keys: list[SigningKey],
        *,
        paths: tuple[str, ...] = ("",),
        threshold: int = 1,
        declared_keys: list[SigningKey] | None = None,
    ) -> None:
        parent_name = role.rsplit("/", 1)[0]
        parent = self.roles[parent_name]
        named = keys if declared_keys is None else declared_keys
        self.roles[parent_name] = replace(
            parent,
            delegation_keys={**parent.delegation_keys, **{k.key_id: k.public for k in named}},
            delegations=(
                *parent.delegations,
                Delegation(role, tuple(k.key_id for k in named), threshold, paths),
            ),
        )
        self.roles[role] = Targets(expires=FUTURE, version=1)
        self.signers[role] = keys

    def add_target(self, role: str, name: str, content: bytes) -> TargetFile:
        target = TargetFile(len(content), {"sha256": base64.b64encode(_sha256(content)).decode()})
        self.roles[role] = replace(
            self.roles[role], targets={**self.roles[role].targets, name: target}
        )
        return target

    def role_file(self, role: str) -> bytes:
        signed = self.roles[role].to_signed()
        if role in self.expires:
            signed["expires"] = format_expires(self.expires[role])
        return sign(signed, self.signers[role])

    def publish(self) -> dict[str, bytes]:
        files = {f"{n}.root.json": raw for n, raw in enumerate(self.roots, start=1)}
        files["root.json"] = self.roots[-1]
        meta = {"root": _meta(self.roots[-1])}
        for role in self.roles:
            raw = self.role_file(role)
            files[f"{role}.{hashlib.sha256(raw).hexdigest()}.json"] = raw
            meta[role] = _meta(raw)
        snapshot = sign(
            {
                "_type": "Snapshot",
                "expires": format_expires(self.expires.get("snapshot", FUTURE)),
                "meta": meta,
                "version": self.versions["snapshot"],
            },
            [self.snapshot_key],
        )
        files[f"snapshot.{hashlib.sha256(snapshot).hexdigest()}.json"] = snapshot
        files["timestamp.json"] = sign(
            {
                "_type": "Timestamp",
                "expires": format_expires(self.expires.get("timestamp", FUTURE)),
                "meta": {"snapshot": _meta(snapshot)},
                "version": self.versions["timestamp"],
            },
            [self.timestamp_key],  # type: ignore[list-item]
        )
        return files


def _sha256(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


class FakeTransport(Transport):
    """Serves a dict of file names; 404 behaves as ``HttpTransport``'s (the size limit is
    ``Transport``'s own)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str, str]] = []

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        gun: str,
        role: str,
        body: bytes | None,
        content_type: str | None,
        limit: int,
    ) -> bytes:
        self.requests.append((method, path, scope))
        data = self.files.get(path.removeprefix(f"/v2/{gun}/_trust/tuf/"))
        if data is None:
            raise NotFound("not found", gun=gun, role=role, code="METADATA_NOT_FOUND", status=404)
        return data


def read(files: dict[str, bytes], **options):
    return Reader(FakeTransport(files)).read(GUN, **options)


def refused(files: dict[str, bytes], role: str, match: str, **options) -> InvalidMetadata:
    """Reading must fail with exactly ``InvalidMetadata`` naming the GUN and ``role``."""
    with pytest.raises(InvalidMetadata, match=match) as caught:
        read(files, **options)
    assert type(caught.value) is InvalidMetadata
    assert caught.value.role == role
    assert str(caught.value).startswith(f"{GUN} {role}: ")
    return caught.value


def file_named(files: dict[str, bytes], role: str) -> str:
    (name,) = [n for n in files if n.startswith(f"{role}.") and len(n) == len(role) + 70]
    return name


@pytest.fixture
def sim() -> Simulator:
    return Simulator()


@pytest.fixture
def teams(sim):
    """``targets/releases`` (two keys) and ``targets/ci`` (one key, ``ci/`` only)."""
    releases = [plain_signing_key(generate_ecdsa_key()) for _ in range(2)]
    ci = plain_signing_key(generate_ecdsa_key())
    sim.delegate("targets/releases", releases)
    sim.delegate("targets/ci", [ci], paths=("ci/",))
    sim.add_target("targets/releases", "v1.0", b"release one")
    sim.add_target("targets/ci", "ci/build-7", b"build seven")
    sim.add_target("targets", "v1.0", b"old top-level")
    return {"releases": releases, "ci": ci}


# -- a valid repository --------------------------------------------------------------------


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
    assert found.target.hashes["sha256"] == base64.b64encode(_sha256(b"release one")).decode()
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


# -- pinning -------------------------------------------------------------------------------


def test_without_a_pin_the_result_says_trust_on_first_use(sim):
    result = read(sim.publish())

    assert result.root_pinned is False
    certificate_key = sim.root_keys[0]
    assert result.root_key_ids == {certificate_key.key_id}


def test_a_root_pinned_by_either_kind_of_key_id_or_by_certificate(sim):
    files = sim.publish()
    root_key = sim.root_keys[0]
    pem = base64.b64decode(root_key.public.public)
    canonical = canonical_key_id(x509.load_pem_x509_certificate(pem))

    for pin in (RootPin.keys(root_key.key_id), RootPin.keys(canonical), RootPin.certificate(pem)):
        result = read(files, pinned_root=pin)
        assert result.root_pinned is True
        assert result.root_canonical_key_ids == {canonical}


def test_a_pin_mismatch_is_refused(sim):
    stranger = root_signing_key(generate_ecdsa_key(), GUN)
    pem = base64.b64decode(stranger.public.public).decode()

    refused(sim.publish(), "root", "pin mismatch", pinned_root=RootPin.keys(stranger.key_id))
    refused(sim.publish(), "root", "pin mismatch", pinned_root=RootPin.certificate(pem))


def test_a_pin_needs_something_to_pin():
    with pytest.raises(ValueError, match="at least one"):
        RootPin()


# -- root rotation -------------------------------------------------------------------------


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


def test_a_new_root_not_signed_by_the_old_root_key_is_refused(sim):
    old_key = sim.root_keys[0]
    new_key = root_signing_key(generate_ecdsa_key(), GUN)
    sim.root_keys = [new_key]
    sim.sign_root(signers=[new_key])

    refused(
        sim.publish(),
        "root",
        "version 2 is not signed by a threshold of the root keys of version 1",
        pinned_root=RootPin.keys(old_key.key_id),
    )


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


def test_a_root_for_another_gun_is_refused():
    other = Simulator(root_key=root_signing_key(generate_ecdsa_key(), "registry.example.com/x"))

    refused(other.publish(), "root", "CN 'registry.example.com/x', not this GUN")


def test_a_wildcard_root_certificate_covers_its_prefix():
    wildcard = Simulator(root_key=root_signing_key(generate_ecdsa_key(), "registry.example.com/*"))

    assert read(wildcard.publish()).root_pinned is False


def test_an_expired_root_is_refused(sim):
    sim.expires["root"] = PAST
    sim.roots.clear()
    sim.sign_root()

    refused(sim.publish(), "root", "expired")


# -- timestamp and snapshot ----------------------------------------------------------------


def test_an_expired_timestamp_is_refused(sim):
    sim.expires["timestamp"] = PAST

    refused(sim.publish(), "timestamp", "expired at")


def test_a_rolled_back_timestamp_is_refused(sim):
    sim.versions["timestamp"] = 3

    error = refused(sim.publish(), "timestamp", "rollback", known_versions={"timestamp": 5})

    assert "version 3 is older than the known 5" in str(error)


def test_known_versions_from_a_read_accept_the_same_repository(sim, teams):
    files = sim.publish()

    again = read(files, known_versions=read(files).versions)

    assert again.roles.keys() == {"targets", "targets/releases", "targets/ci"}


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


def test_a_targets_file_larger_than_the_snapshot_says_is_refused(sim):
    files = sim.publish()
    name = file_named(files, "targets")
    files[name] += b" "

    refused(files, "targets", "larger than")


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
