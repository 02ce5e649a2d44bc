"""A verifying reader of Notary trust data, in the style of python-tuf's ngclient.

Two parts. ``Verifier`` is a pure state machine over bytes, like python-tuf's
``TrustedMetadataSet``: it is fed root, timestamp, snapshot, targets and the delegated
roles in that order and checks each against what it already trusts. ``Reader`` does the
I/O: it fetches the files that docs/notary-protocol.md, "Reading", lists through a
``Transport`` and feeds them to a ``Verifier``.

Failures come in the package's two families (``errors.py``). Data that does not verify
raises ``InvalidMetadata`` naming the GUN and the role; transport errors pass through
(``NotaryUnavailable``: retry; ``NotFound``/``NotaryRejected``: do not). Only an invalid
delegated role is not fatal: it is skipped, and the result carries a warning ("Reading").
"""

import base64
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from trust.notary.errors import InvalidMetadata, NotaryError, NotaryRejected, NotFound
from trust.notary.keys import TufKey, canonical_key_id, tuf_key_canonical_id
from trust.notary.metadata import (
    KEY_ROLES_LIMIT,
    RELEASES,
    TARGETS,
    Delegation,
    FileMeta,
    Root,
    SignedFile,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
    file_hashes,
    parse_file,
)
from trust.notary.transport import Transport, repository_scope, trust_path

# Lower-case, starts with targets/, under 256 characters, path-clean
# (docs/notary-protocol.md, "Delegation roles").
DELEGATION_NAME = re.compile(r"targets(/[-a-z0-9_]+)+")
# A root certificate's NotBefore may lie at most this far in the future
# (docs/notary-protocol.md, "Key IDs").
NOT_BEFORE_LEEWAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class ReaderLimits:
    """How much a reader downloads and walks (docs/notary-protocol.md, "Reading").

    Snapshot, targets and delegations are capped by the length their parent names, so only
    the files fetched without a known length need a limit here.
    """

    timestamp_length: int = 1024 * 1024
    root_length: int = KEY_ROLES_LIMIT
    max_root_versions: int = 100
    max_delegations: int = 1000
    # How deep under ``targets`` to read: None for all. Evaluations read only the direct
    # children (1): nothing nested counts, and a publisher who declares a thousand nested
    # roles must not push everyone's own role past ``max_delegations``.
    max_depth: int | None = None


@dataclass(frozen=True)
class RootPin:
    """What the caller trusts the root to be signed by, instead of trust on first use.

    ``key_ids`` may hold TUF x509 key IDs (as in the metadata, and as Docker's trust pinning
    compares them) or *canonical* IDs (as ``notary key list`` shows them); see
    docs/notary-protocol.md, "Trust pinning" and "Key IDs". ``certificates`` are DER.
    A root matches the pin when a threshold of its root keys that match the pin signed it.
    """

    key_ids: frozenset[str] = frozenset()
    certificates: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        if not self.key_ids and not self.certificates:
            raise ValueError("a root pin needs at least one key ID or certificate")

    @classmethod
    def keys(cls, *key_ids: str) -> "RootPin":
        return cls(key_ids=frozenset(key_id.lower() for key_id in key_ids))

    @classmethod
    def certificate(cls, *pems: str | bytes) -> "RootPin":
        """Pin PEM certificates; each must hold a certificate (the first block counts)."""
        loaded = (
            x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
            for pem in pems
        )
        return cls(
            certificates=frozenset(c.public_bytes(serialization.Encoding.DER) for c in loaded)
        )

    def matches(self, key_id: str, certificate: x509.Certificate) -> bool:
        if key_id in self.key_ids or canonical_key_id(certificate) in self.key_ids:
            return True
        return certificate.public_bytes(serialization.Encoding.DER) in self.certificates


@dataclass(frozen=True)
class ReaderWarning:
    """A delegated role the reader skipped, and why (docs/notary-protocol.md, "Reading")."""

    role: str
    message: str

    def __str__(self) -> str:
        return f"{self.role}: {self.message}"


@dataclass(frozen=True)
class VerifiedRole:
    """One verified targets role: its accepted targets and who signed it.

    ``targets`` holds only names inside the role's effective ``paths``
    (docs/notary-protocol.md, "Reading"). ``signers`` are the TUF key IDs, as in the
    metadata, whose signatures verified; ``signer_key_ids`` the same keys by the ID
    ``notary key list`` shows ("Key IDs" there).
    ``fingerprint`` identifies the signed bytes (``SignedFile.fingerprint``).
    """

    name: str
    version: int
    expires: dt.datetime
    paths: tuple[str, ...]
    signers: frozenset[str]
    targets: Mapping[str, TargetFile]
    signer_key_ids: frozenset[str] = frozenset()
    fingerprint: str = ""


@dataclass(frozen=True)
class FoundTarget:
    role: str
    name: str
    target: TargetFile


@dataclass(frozen=True)
class VerifiedRepository:
    """Everything a read verified for one GUN.

    ``root_pinned`` is false for trust on first use. ``root_key_ids`` are the TUF x509 IDs
    of the root role's keys, ``root_canonical_key_ids`` their canonical IDs
    (docs/notary-protocol.md, "Key IDs").
    ``roles`` is in traversal order (pre-order, depth first). ``versions`` holds every
    verified file's version: pass it back as ``known_versions`` to refuse rollbacks.
    """

    gun: str
    root_pinned: bool
    root_key_ids: frozenset[str]
    root_canonical_key_ids: frozenset[str]
    roles: Mapping[str, VerifiedRole]
    versions: Mapping[str, int]
    warnings: tuple[ReaderWarning, ...] = ()

    def lookup(self, tag: str) -> FoundTarget | None:
        """A tag as Docker finds it: in ``targets/releases``, else in ``targets``
        (docs/notary-protocol.md, "Reading")."""
        for role in (RELEASES, TARGETS):
            verified = self.roles.get(role)
            if verified is not None and tag in verified.targets:
                return FoundTarget(role, tag, verified.targets[tag])
        return None

    def find(self, name: str) -> FoundTarget | None:
        """The first role in traversal order that holds ``name``
        (docs/notary-protocol.md, "Reading")."""
        for role in self.roles.values():
            if name in role.targets:
                return FoundTarget(role.name, name, role.targets[name])
        return None


@dataclass(frozen=True)
class _Declared:
    """A delegated role as its verified parent declares it, with its effective paths."""

    parent: str
    delegation: Delegation
    paths: tuple[str, ...]
    meta: FileMeta


@dataclass
class _RootState:
    file: SignedFile
    root: Root
    certificates: dict[str, x509.Certificate]
    signers: set[str] = field(default_factory=set)


class Verifier:
    """The pure part of a read (docs/notary-protocol.md, "Reading"): feed it bytes in order,
    it keeps what verified.

    Order: ``update_root`` (once, or once per version when walking a rotation chain from
    version 1), ``update_timestamp``, ``update_snapshot``, ``update_targets``, then
    ``update_delegation`` for each role in ``children(parent)``, depth first. ``location``
    says which file to fetch next. ``result`` gives the ``VerifiedRepository``.
    """

    def __init__(
        self,
        gun: str,
        *,
        pin: RootPin | None = None,
        known_versions: Mapping[str, int] | None = None,
        limits: ReaderLimits | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.gun = gun
        self.pin = pin
        self.known_versions = dict(known_versions or {})
        self.limits = limits or ReaderLimits()
        self.now = now or dt.datetime.now(dt.UTC)
        self._root: _RootState | None = None
        self._anchored = pin is None
        self._root_sealed = False
        self._timestamp: Timestamp | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_meta: dict[str, FileMeta] = {}
        self._roles: dict[str, VerifiedRole] = {}
        self._declared: dict[str, _Declared] = {}
        self._children: dict[str, tuple[str, ...]] = {}
        self._delegation_keys: dict[str, dict[str, TufKey]] = {}
        self._versions: dict[str, int] = {}
        self._warnings: list[ReaderWarning] = []

    # -- helpers ----------------------------------------------------------------------

    def _invalid(self, role: str, message: str) -> InvalidMetadata:
        return InvalidMetadata(message, gun=self.gun, role=role)

    def _parse(self, data: bytes, role: str) -> SignedFile:
        try:
            return parse_file(data, role=role, gun=self.gun)
        except InvalidMetadata as error:  # deep nesting included (parse_file)
            raise self._reworded(error, role) from error

    def _reworded(self, error: InvalidMetadata, role: str) -> InvalidMetadata:
        """The metadata parsers know the role but not the GUN: name both (errors.py)."""
        return error if error.gun else self._invalid(role, _reason(error))

    def _check_threshold(
        self, signed: SignedFile, keys: dict[str, TufKey], keyids: tuple[str, ...], threshold: int
    ) -> frozenset[str]:
        """The distinct key IDs that validly signed, or nothing if under threshold
        (docs/notary-protocol.md, "Signatures")."""
        signers = frozenset(signed.signed_by(keys, list(keyids)))
        return signers if threshold >= 1 and len(signers) >= threshold else frozenset()

    def _check_fresh(self, signed: SignedFile, role: str) -> None:
        """Not expired, and not older than the version the caller remembers
        (docs/notary-protocol.md, "Reading")."""
        try:
            expires = signed.expires
        except InvalidMetadata as error:
            raise self._reworded(error, role) from error
        if expires <= self.now:
            raise self._invalid(role, f"expired at {expires.isoformat()}")
        known = self.known_versions.get(role, 0)
        if signed.version < known:
            raise self._invalid(
                role, f"rollback: version {signed.version} is older than the known {known}"
            )

    def _check_meta(self, data: bytes, meta: FileMeta, role: str, named_by: str) -> None:
        """Length and every sha256/sha512 given in the parent's ``meta``
        (docs/notary-protocol.md, "Reading")."""
        if len(data) != meta.length:
            raise self._invalid(role, f"{len(data)} bytes where the {named_by} names {meta.length}")
        actual = file_hashes(data)
        checked = [name for name in ("sha256", "sha512") if name in meta.hashes]
        if not checked:
            raise self._invalid(role, f"the {named_by} gives no sha256 or sha512 for it")
        for name in checked:
            if actual[name] != meta.hashes[name]:
                raise self._invalid(
                    role, f"{name} does not match the {named_by} (tampered or stale file)"
                )

    # -- root (docs/notary-protocol.md: "Reading"; certificates: "Key IDs") ------------

    @property
    def root_version(self) -> int:
        if self._root is None:
            raise RuntimeError("no root loaded")
        return self._root.root.version

    @property
    def root_anchored(self) -> bool:
        """True once a root is trusted: without a pin always, with a pin once one matched."""
        return self._root is not None and self._anchored

    @property
    def root_bytes(self) -> bytes:
        if self._root is None:
            raise RuntimeError("no root loaded")
        return self._root.file.raw

    def _root_certificates(self, root: Root) -> dict[str, x509.Certificate]:
        """The root role's certificates; each must be x509, named for the GUN, no CA
        (docs/notary-protocol.md, "Key IDs")."""
        certificates = {}
        for key_id in root.roles["root"].keyids:
            key = root.keys.get(key_id)
            if key is None or key.key_id != key_id:
                raise self._invalid("root", f"root key {key_id} is not in keys under its ID")
            if not key.keytype.endswith("-x509"):
                raise self._invalid("root", f"root key {key_id} is {key.keytype}, not x509")
            try:
                certificate = x509.load_pem_x509_certificate(
                    base64.b64decode(key.public, validate=True)
                )
            except ValueError as error:
                raise self._invalid("root", f"root key {key_id} holds no certificate") from error
            self._check_certificate(key_id, certificate)
            certificates[key_id] = certificate
        return certificates

    def _check_certificate(self, key_id: str, certificate: x509.Certificate) -> None:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        wildcard = common_name.endswith("*") and self.gun.startswith(common_name[:-1])
        if common_name != self.gun and not wildcard:
            raise self._invalid(
                "root", f"root certificate {key_id} is for CN {common_name!r}, not this GUN"
            )
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        except ValueError as error:  # e.g. a duplicated extension
            raise self._invalid("root", f"root certificate {key_id} is malformed") from error
        if constraints is not None and constraints.value.ca:
            raise self._invalid("root", f"root certificate {key_id} is a CA certificate")
        public_key = certificate.public_key()
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            raise self._invalid("root", f"root certificate {key_id} has an RSA key under 2048 bits")
        if isinstance(certificate.signature_hash_algorithm, hashes.SHA1):
            raise self._invalid("root", f"root certificate {key_id} is signed with SHA-1")

    def update_root(self, data: bytes) -> None:
        """Load a root; called again, the next version of a rotation chain.

        Each root must be signed by a threshold of its own root keys; a next version must
        be exactly one higher and also signed by a threshold of the previous root's root
        keys (docs/notary-protocol.md, "Reading" and "Publishing"). With a pin, the chain is
        trusted from the first root that a threshold of pinned keys signed.
        """
        if self._root_sealed:
            raise RuntimeError("the root is final once the timestamp is loaded")
        if len(data) > self.limits.root_length:
            raise self._invalid("root", f"larger than {self.limits.root_length} bytes")
        signed = self._parse(data, "root")
        try:
            root = Root.from_signed(signed.signed)
        except InvalidMetadata as error:
            raise self._reworded(error, "root") from error
        if root.version < 1:
            raise self._invalid("root", f"version {root.version} is below 1")
        for name, role in root.roles.items():
            if role.threshold < 1:
                raise self._invalid("root", f"role {name} has threshold {role.threshold}")
        certificates = self._root_certificates(root)
        own = self._check_threshold(
            signed, root.keys, root.roles["root"].keyids, root.roles["root"].threshold
        )
        if not own:
            raise self._invalid(
                "root", f"version {root.version} is not signed by a threshold of its root keys"
            )
        previous = self._root
        if previous is not None:
            if root.version != previous.root.version + 1:
                raise self._invalid(
                    "root", f"version {root.version} does not follow {previous.root.version}"
                )
            if not self._check_threshold(
                signed,
                previous.root.keys,
                previous.root.roles["root"].keyids,
                previous.root.roles["root"].threshold,
            ):
                raise self._invalid(
                    "root",
                    f"version {root.version} is not signed by a threshold of the root keys "
                    f"of version {previous.root.version}",
                )
        if not self._anchored and self.pin is not None:
            pinned = {k for k in own if self.pin.matches(k, certificates[k])}
            self._anchored = len(pinned) >= root.roles["root"].threshold
        self._root = _RootState(signed, root, certificates, set(own))

    def _seal_root(self) -> Root:
        """The trusted root is the last one loaded: pinned, unexpired, not rolled back."""
        state = self._root
        if state is None:
            raise RuntimeError("load the root first")
        if self._root_sealed:
            return state.root
        if not self._anchored:
            raise self._invalid(
                "root",
                f"pin mismatch: version {state.root.version} is not signed by a threshold "
                "of the pinned root keys, nor reached from such a root by rotation",
            )
        self._check_fresh(state.file, "root")
        valid = {
            key_id
            for key_id in state.signers
            if state.certificates[key_id].not_valid_after_utc > self.now
            and state.certificates[key_id].not_valid_before_utc <= self.now + NOT_BEFORE_LEEWAY
        }
        if len(valid) < state.root.roles["root"].threshold:
            raise self._invalid("root", "the root certificates that signed it are not valid now")
        self._versions["root"] = state.root.version
        self._root_sealed = True
        return state.root

    # -- timestamp and snapshot (docs/notary-protocol.md, "Reading") --------------------

    def update_timestamp(self, data: bytes) -> None:
        """Size ≤ 1 MiB, timestamp keys' threshold, unexpired, no rollback
        (docs/notary-protocol.md, "Reading")."""
        root = self._seal_root()
        if len(data) > self.limits.timestamp_length:
            raise self._invalid("timestamp", f"larger than {self.limits.timestamp_length} bytes")
        signed = self._parse(data, "timestamp")
        try:
            timestamp = Timestamp.from_signed(signed.signed)
        except InvalidMetadata as error:
            raise self._reworded(error, "timestamp") from error
        role = root.roles["timestamp"]
        if not self._check_threshold(
            signed, root.role_keys("timestamp"), role.keyids, role.threshold
        ):
            raise self._invalid("timestamp", "not signed by a threshold of the timestamp keys")
        self._check_fresh(signed, "timestamp")
        self._timestamp = timestamp
        self._versions["timestamp"] = timestamp.version

    def update_snapshot(self, data: bytes) -> None:
        """Hashes from the timestamp, snapshot keys, unexpired, ``meta.root``
        (docs/notary-protocol.md, "Reading")."""
        root = self._seal_root()
        if self._timestamp is None:
            raise RuntimeError("load the timestamp first")
        self._check_meta(data, self._timestamp.snapshot, "snapshot", "timestamp")
        signed = self._parse(data, "snapshot")
        try:
            snapshot = Snapshot.from_signed(signed.signed)
        except InvalidMetadata as error:
            raise self._reworded(error, "snapshot") from error
        role = root.roles["snapshot"]
        if not self._check_threshold(
            signed, root.role_keys("snapshot"), role.keyids, role.threshold
        ):
            raise self._invalid("snapshot", "not signed by a threshold of the snapshot keys")
        self._check_fresh(signed, "snapshot")
        if "root" in snapshot.meta:
            try:
                self._check_meta(self.root_bytes, snapshot.meta["root"], "root", "snapshot")
            except InvalidMetadata as error:
                raise self._invalid("snapshot", f"names another root: {_reason(error)}") from error
        self._snapshot = snapshot
        self._snapshot_meta = snapshot.meta
        self._versions["snapshot"] = snapshot.version

    def location(self, role: str) -> tuple[str, int]:
        """The file to fetch for ``role`` by its sha256, and its exact length
        (docs/notary-protocol.md, "Reading")."""
        if role == "snapshot":
            if self._timestamp is None:
                raise RuntimeError("load the timestamp first")
            meta, named_by = self._timestamp.snapshot, "timestamp"
        else:
            if self._snapshot is None:
                raise RuntimeError("load the snapshot first")
            found = self._snapshot.meta.get(role)
            if found is None:
                raise self._invalid(role, "the snapshot does not name it")
            meta, named_by = found, "snapshot"
        try:
            digest = meta.sha256_hex
        except (KeyError, ValueError) as error:
            raise self._invalid(role, f"the {named_by} gives no valid sha256 for it") from error
        if len(digest) != 64:
            raise self._invalid(role, f"the {named_by} gives no valid sha256 for it")
        return f"{role}.{digest}.json", meta.length

    # -- targets and delegations (docs/notary-protocol.md, "Reading") -------------------

    def update_targets(self, data: bytes) -> None:
        """Top-level targets: hashes, the root's targets keys, unexpired; failure is fatal."""
        root = self._seal_root()
        if self._snapshot is None:
            raise RuntimeError("load the snapshot first")
        if TARGETS not in self._snapshot.meta:
            raise self._invalid(TARGETS, "the snapshot does not name it")
        self._check_meta(data, self._snapshot.meta[TARGETS], TARGETS, "snapshot")
        signed = self._parse(data, TARGETS)
        role = root.roles[TARGETS]
        signers = self._check_threshold(
            signed, root.role_keys(TARGETS), role.keyids, role.threshold
        )
        if not signers:
            raise self._invalid(TARGETS, "not signed by a threshold of the root's targets keys")
        self._accept(TARGETS, signed, signers, ("",), root.role_keys(TARGETS))

    def children(self, parent: str) -> tuple[str, ...]:
        """The roles to visit under a verified ``parent``, in its listed order
        (docs/notary-protocol.md, "Reading")."""
        return self._children.get(parent, ())

    def update_delegation(self, role: str, data: bytes) -> bool:
        """Verify a delegated role declared by a verified parent; False if skipped.

        ``threshold`` distinct key IDs of the role, with keys from the parent's
        ``delegations.keys``, must have signed it, and it must not be expired. A failure
        is recorded as a warning and the role (and everything under it) skipped.
        """
        declared = self._declared.get(role)
        if declared is None:
            raise RuntimeError(f"{role} is not a declared role awaiting verification")
        try:
            self._check_meta(data, declared.meta, role, "snapshot")
            signed = self._parse(data, role)
            delegation = declared.delegation
            signers = self._check_threshold(
                signed,
                self._delegation_keys[declared.parent],
                delegation.keyids,
                delegation.threshold,
            )
            if not signers:
                raise self._invalid(
                    role, f"not signed by {delegation.threshold} of its keys in {declared.parent}"
                )
            self._accept(
                role, signed, signers, declared.paths, self._delegation_keys[declared.parent]
            )
        except InvalidMetadata as error:
            self.skip_delegation(role, _reason(error))
            return False
        return True

    def skip_delegation(self, role: str, reason: str) -> None:
        """Record that ``role`` was not read (e.g. its file was too large to fetch)."""
        self._declared.pop(role, None)
        self._warnings.append(ReaderWarning(role, reason))

    def _accept(
        self,
        role: str,
        signed: SignedFile,
        signers: frozenset[str],
        paths: tuple[str, ...],
        keys: Mapping[str, TufKey],
    ) -> None:
        try:
            targets = Targets.from_signed(signed.signed, role=role)
        except InvalidMetadata as error:
            raise self._reworded(error, role) from error
        self._check_fresh(signed, role)
        accepted = {
            name: target
            for name, target in targets.targets.items()
            if any(name.startswith(path) for path in paths)
        }
        self._roles[role] = VerifiedRole(
            name=role,
            version=targets.version,
            expires=targets.expires,
            paths=paths,
            signers=signers,
            targets=MappingProxyType(accepted),
            signer_key_ids=frozenset(tuf_key_canonical_id(keys[key_id]) for key_id in signers),
            fingerprint=signed.fingerprint,
        )
        self._versions[role] = targets.version
        self._declared.pop(role, None)
        self._delegation_keys[role] = targets.delegation_keys
        self._children[role] = self._declare_children(role, targets, paths)

    def _declare_children(
        self, parent: str, targets: Targets, parent_paths: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The parent's ``delegations.roles`` worth visiting; ill-formed ones are warned."""
        children: list[str] = []
        for delegation in targets.delegations:
            name = delegation.name
            problem = ""
            if (
                len(name) >= 256
                or not DELEGATION_NAME.fullmatch(name)
                or name.rsplit("/", 1)[0] != parent
            ):
                problem = f"not a valid direct child of {parent}"
            elif name in children:
                problem = f"declared twice in {parent}"
            elif delegation.threshold < 1:
                problem = f"threshold {delegation.threshold} in {parent}"
            elif (
                len(set(delegation.keyids) & targets.delegation_keys.keys()) < delegation.threshold
            ):
                problem = f"fewer keys than its threshold {delegation.threshold} in {parent}"
            if problem:
                self._warnings.append(ReaderWarning(name, problem))
                continue
            meta = self._snapshot_meta.get(name)
            if meta is None:
                continue  # declared but never published (docs/notary-protocol.md, "Reading")
            paths = tuple(
                path
                for path in delegation.paths
                if any(path.startswith(prefix) for prefix in parent_paths)
            )
            self._declared[name] = _Declared(parent, delegation, paths, meta)
            children.append(name)
        return tuple(children)

    def result(self) -> VerifiedRepository:
        if self._root is None or TARGETS not in self._roles:
            raise RuntimeError("the top-level targets has not been verified")
        root = self._root
        return VerifiedRepository(
            gun=self.gun,
            root_pinned=self.pin is not None,
            root_key_ids=frozenset(root.certificates),
            root_canonical_key_ids=frozenset(
                canonical_key_id(certificate) for certificate in root.certificates.values()
            ),
            roles=MappingProxyType(dict(self._roles)),
            versions=MappingProxyType(dict(self._versions)),
            warnings=tuple(self._warnings),
        )


class Reader:
    """Fetches a GUN's trust data as ``notary list`` does and verifies it.

    Requests: ``root.json`` (plus ``1.root.json`` … ``N.root.json`` when a pinned key was
    rotated out), ``timestamp.json``, ``snapshot.<sha256>.json``, ``targets.<sha256>.json``
    and ``<role>.<sha256>.json`` per delegated role, all with ``pull`` scope
    (docs/notary-protocol.md, "Reading" and "Token authentication").
    """

    def __init__(self, transport: Transport, *, limits: ReaderLimits | None = None) -> None:
        self.transport = transport
        self.limits = limits or ReaderLimits()

    def read(
        self,
        gun: str,
        *,
        pinned_root: RootPin | None = None,
        known_versions: Mapping[str, int] | None = None,
    ) -> VerifiedRepository:
        """Verify the GUN's targets and delegations; see ``VerifiedRepository``.

        Raises ``InvalidMetadata`` when the data does not verify, ``NotFound`` when the GUN
        has no trust data, and ``NotaryUnavailable`` when the server cannot be reached.
        """

        def verifier() -> Verifier:
            return Verifier(gun, pin=pinned_root, known_versions=known_versions, limits=self.limits)

        try:
            current = self._get(gun, "root.json", "root", self.limits.root_length)
        except NotFound as error:
            raise NotFound(
                "the repository has no trust data on this server",
                gun=gun,
                role="root",
                code=error.code,
                status=error.status,
            ) from error
        trusted = verifier()
        trusted.update_root(current)
        if not trusted.root_anchored and trusted.root_version > 1:
            trusted = self._walk_roots(gun, verifier(), current, trusted.root_version)

        trusted.update_timestamp(
            self._get(gun, "timestamp.json", "timestamp", self.limits.timestamp_length)
        )
        trusted.update_snapshot(self._by_hash(gun, trusted, "snapshot"))
        trusted.update_targets(self._by_hash(gun, trusted, TARGETS))

        pending = list(reversed(trusted.children(TARGETS))) if self.limits.max_depth != 0 else []
        visited = 0
        while pending:
            role = pending.pop()
            if visited == self.limits.max_delegations:
                trusted.skip_delegation(
                    role, f"not read: over {self.limits.max_delegations} delegated roles"
                )
                continue
            visited += 1
            try:
                data = self._by_hash(gun, trusted, role)
            except InvalidMetadata as error:
                trusted.skip_delegation(role, _reason(error))
                continue
            except NotFound:
                # The server can lose a file its snapshot names (it stores what it was
                # sent, but names the hash of its own re-encoding): that role cannot be
                # read, so it cannot count; the others still can.
                trusted.skip_delegation(
                    role, "the server does not have the file its snapshot names"
                )
                continue
            depth = role.count("/")
            below = self.limits.max_depth is None or depth < self.limits.max_depth
            if trusted.update_delegation(role, data) and below:
                pending.extend(reversed(trusted.children(role)))
        return trusted.result()

    def _walk_roots(self, gun: str, walker: Verifier, current: bytes, version: int) -> Verifier:
        """Root rotation catch-up from version 1 to the current ``version``
        (docs/notary-protocol.md, "Reading")."""
        if version > self.limits.max_root_versions:
            raise InvalidMetadata(
                f"pin mismatch, and version {version} is beyond the "
                f"{self.limits.max_root_versions} root versions a reader walks",
                gun=gun,
                role="root",
            )
        for number in range(1, version + 1):
            walker.update_root(
                self._get(gun, f"{number}.root.json", "root", self.limits.root_length)
            )
        if walker.root_bytes != current:
            raise InvalidMetadata(
                f"{version}.root.json differs from root.json", gun=gun, role="root"
            )
        return walker

    def _by_hash(self, gun: str, trusted: Verifier, role: str) -> bytes:
        name, length = trusted.location(role)
        return self._get(gun, name, role, length)

    def _get(self, gun: str, name: str, role: str, limit: int) -> bytes:
        """One GET; a body over ``limit`` is data that does not verify, not a server error."""
        try:
            return self.transport.request(
                "GET",
                trust_path(gun, "tuf", name),
                scope=repository_scope(gun, "pull"),
                gun=gun,
                role=role,
                limit=limit,
            )
        except NotaryRejected as error:
            if error.code != "TOO_LARGE":
                raise
            raise InvalidMetadata(f"larger than {limit} bytes", gun=gun, role=role) from error


def _reason(error: NotaryError) -> str:
    """An error's message without the ``<gun> <role>: `` prefix ``NotaryError`` adds."""
    where = " ".join(part for part in (error.gun, error.role) if part)
    return str(error).removeprefix(f"{where}: ") if where else str(error)
