"""What a verifying read is given and what it gives (docs/notary-protocol.md, "Reading").

Given: ``RootPin``, the root a caller trusts instead of trust on first use, and
``ReaderLimits``. Given back: ``VerifiedRepository``, with a ``VerifiedRole`` per role that
verified and a ``ReaderWarning`` per delegated role skipped. Plain values, apart from the
machinery that makes them (``verifier.py``, ``reader.py``), so that code that only uses a
result, such as policy evaluation, builds on this module alone.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trust.notary.keys import canonical_key_id
from trust.notary.metadata import KEY_ROLES_LIMIT, RELEASES, TARGETS, TargetFile


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
