"""The pure part of a verifying read, in the style of python-tuf's ``TrustedMetadataSet``.

``Verifier`` is a state machine over bytes: it is fed root, timestamp, snapshot, targets and
the delegated roles in that order, and checks each against what it already trusts. The root
is ``root_chain.RootChain``'s; each file goes through ``checks.FileChecks``. It does no I/O:
``reader.Reader`` fetches the files it names (docs/notary-protocol.md, "Reading").
"""

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from trust.notary.checks import FileChecks, reason
from trust.notary.errors import InvalidMetadata
from trust.notary.keys import TufKey, canonical_key_id, tuf_key_canonical_id
from trust.notary.metadata import (
    TARGETS,
    Delegation,
    FileMeta,
    Root,
    SignedFile,
    Snapshot,
    Targets,
    Timestamp,
)
from trust.notary.root_chain import RootChain
from trust.notary.verified import (
    ReaderLimits,
    ReaderWarning,
    RootPin,
    VerifiedRepository,
    VerifiedRole,
)

# Lower-case, starts with targets/, under 256 characters, path-clean
# (docs/notary-protocol.md, "Delegation roles").
DELEGATION_NAME = re.compile(r"targets(/[-a-z0-9_]+)+")


@dataclass(frozen=True)
class _Declared:
    """A delegated role as its verified parent declares it, with its effective paths."""

    parent: str
    delegation: Delegation
    paths: tuple[str, ...]
    meta: FileMeta


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
        self._checks = FileChecks(gun, self.now, self.known_versions)
        self._roots = RootChain(self._checks, pin=pin, limit=self.limits.root_length)
        self._timestamp: Timestamp | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_meta: dict[str, FileMeta] = {}
        self._roles: dict[str, VerifiedRole] = {}
        self._declared: dict[str, _Declared] = {}
        self._children: dict[str, tuple[str, ...]] = {}
        self._delegation_keys: dict[str, dict[str, TufKey]] = {}
        self._versions: dict[str, int] = {}
        self._warnings: list[ReaderWarning] = []

    # -- root (``RootChain``) -----------------------------------------------------------

    @property
    def root_version(self) -> int:
        return self._roots.version

    @property
    def root_anchored(self) -> bool:
        """True once a root is trusted: without a pin always, with a pin once one matched."""
        return self._roots.anchored

    @property
    def root_bytes(self) -> bytes:
        return self._roots.raw

    def update_root(self, data: bytes) -> None:
        """Load a root; called again, the next version of a rotation chain
        (``RootChain.update``)."""
        self._roots.update(data)

    def _seal_root(self) -> Root:
        """The trusted root is the last one loaded: pinned, unexpired, not rolled back."""
        root = self._roots.seal()
        self._versions["root"] = root.version
        return root

    # -- timestamp and snapshot (docs/notary-protocol.md, "Reading") --------------------

    def update_timestamp(self, data: bytes) -> None:
        """Size ≤ 1 MiB, timestamp keys' threshold, unexpired, no rollback
        (docs/notary-protocol.md, "Reading")."""
        root = self._seal_root()
        if len(data) > self.limits.timestamp_length:
            raise self._checks.invalid(
                "timestamp", f"larger than {self.limits.timestamp_length} bytes"
            )
        signed = self._checks.parse(data, "timestamp")
        try:
            timestamp = Timestamp.from_signed(signed.signed)
        except InvalidMetadata as error:
            raise self._checks.reworded(error, "timestamp") from error
        role = root.roles["timestamp"]
        if not self._checks.check_threshold(
            signed, root.role_keys("timestamp"), role.keyids, role.threshold
        ):
            raise self._checks.invalid(
                "timestamp", "not signed by a threshold of the timestamp keys"
            )
        self._checks.check_fresh(signed, "timestamp")
        self._timestamp = timestamp
        self._versions["timestamp"] = timestamp.version

    def update_snapshot(self, data: bytes) -> None:
        """Hashes from the timestamp, snapshot keys, unexpired, ``meta.root``
        (docs/notary-protocol.md, "Reading")."""
        root = self._seal_root()
        if self._timestamp is None:
            raise RuntimeError("load the timestamp first")
        self._checks.check_meta(data, self._timestamp.snapshot, "snapshot", "timestamp")
        signed = self._checks.parse(data, "snapshot")
        try:
            snapshot = Snapshot.from_signed(signed.signed)
        except InvalidMetadata as error:
            raise self._checks.reworded(error, "snapshot") from error
        role = root.roles["snapshot"]
        if not self._checks.check_threshold(
            signed, root.role_keys("snapshot"), role.keyids, role.threshold
        ):
            raise self._checks.invalid("snapshot", "not signed by a threshold of the snapshot keys")
        self._checks.check_fresh(signed, "snapshot")
        if "root" in snapshot.meta:
            try:
                self._checks.check_meta(self.root_bytes, snapshot.meta["root"], "root", "snapshot")
            except InvalidMetadata as error:
                raise self._checks.invalid(
                    "snapshot", f"names another root: {reason(error)}"
                ) from error
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
                raise self._checks.invalid(role, "the snapshot does not name it")
            meta, named_by = found, "snapshot"
        try:
            digest = meta.sha256_hex
        except (KeyError, ValueError) as error:
            raise self._checks.invalid(
                role, f"the {named_by} gives no valid sha256 for it"
            ) from error
        if len(digest) != 64:
            raise self._checks.invalid(role, f"the {named_by} gives no valid sha256 for it")
        return f"{role}.{digest}.json", meta.length

    # -- targets and delegations (docs/notary-protocol.md, "Reading") -------------------

    def update_targets(self, data: bytes) -> None:
        """Top-level targets: hashes, the root's targets keys, unexpired; failure is fatal."""
        root = self._seal_root()
        if self._snapshot is None:
            raise RuntimeError("load the snapshot first")
        if TARGETS not in self._snapshot.meta:
            raise self._checks.invalid(TARGETS, "the snapshot does not name it")
        self._checks.check_meta(data, self._snapshot.meta[TARGETS], TARGETS, "snapshot")
        signed = self._checks.parse(data, TARGETS)
        role = root.roles[TARGETS]
        signers = self._checks.check_threshold(
            signed, root.role_keys(TARGETS), role.keyids, role.threshold
        )
        if not signers:
            raise self._checks.invalid(
                TARGETS, "not signed by a threshold of the root's targets keys"
            )
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
            self._checks.check_meta(data, declared.meta, role, "snapshot")
            signed = self._checks.parse(data, role)
            delegation = declared.delegation
            signers = self._checks.check_threshold(
                signed,
                self._delegation_keys[declared.parent],
                delegation.keyids,
                delegation.threshold,
            )
            if not signers:
                raise self._checks.invalid(
                    role, f"not signed by {delegation.threshold} of its keys in {declared.parent}"
                )
            self._accept(
                role, signed, signers, declared.paths, self._delegation_keys[declared.parent]
            )
        except InvalidMetadata as error:
            self.skip_delegation(role, reason(error))
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
            raise self._checks.reworded(error, role) from error
        self._checks.check_fresh(signed, role)
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
        if TARGETS not in self._roles:  # verified only under a sealed root
            raise RuntimeError("the top-level targets has not been verified")
        certificates = self._roots.certificates
        return VerifiedRepository(
            gun=self.gun,
            root_pinned=self.pin is not None,
            root_key_ids=frozenset(certificates),
            root_canonical_key_ids=frozenset(
                canonical_key_id(certificate) for certificate in certificates.values()
            ),
            roles=MappingProxyType(dict(self._roles)),
            versions=MappingProxyType(dict(self._versions)),
            warnings=tuple(self._warnings),
        )
