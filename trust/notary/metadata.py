"""TUF metadata as Notary 0.7 reads and writes it, parsed tolerantly, written exactly.

Readers accept what Go writes (``roles: null``, ``expires`` with offsets and nanoseconds,
unknown fields). Writers emit exactly the fields and forms Go's structs would, because the
server re-serialises what it stores and hashes that: one byte that differs from Go's output
breaks the repository for every reader. See docs/notary-protocol.md: "Repositories and roles"
for the files, "Canonical JSON and exact bytes" for their bytes.
"""

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from trust.notary.canonical import canonical_json
from trust.notary.errors import InvalidMetadata
from trust.notary.keys import SignatureError, SigningKey, TufKey, verify_signature

BASE_ROLES = ("root", "targets", "snapshot", "timestamp")
TARGETS = "targets"
# The delegation Docker reads a tag from first (docs/notary-protocol.md, "Reading").
RELEASES = "targets/releases"
# Notary's default lifetimes (docs/notary-protocol.md, "Publishing"); the timestamp and
# snapshot are the server's business.
ROOT_LIFETIME = dt.timedelta(days=3650)
TARGETS_LIFETIME = dt.timedelta(days=3 * 365)
# A root or targets file of unknown length (docs/notary-protocol.md, "Reading").
KEY_ROLES_LIMIT = 10 * 1024 * 1024
# Go's encoding/json escapes these inside strings; the canonical form does not
# (docs/notary-protocol.md, "Canonical JSON and exact bytes").
HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def format_expires(moment: dt.datetime) -> str:
    """UTC, whole seconds, ``Z`` (docs/notary-protocol.md, "Canonical JSON and exact bytes")."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expires(text: str) -> dt.datetime:
    """Go's RFC 3339 with nanoseconds and any offset, as the CLI writes it
    (docs/notary-protocol.md, "Canonical JSON and exact bytes")."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError) as error:
        raise InvalidMetadata(f"bad expiry {text!r}") from error
    if moment.tzinfo is None:
        raise InvalidMetadata(f"expiry without a time zone: {text!r}")
    return moment


def expires_in(lifetime: dt.timedelta, *, now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).replace(microsecond=0) + lifetime


# --- Files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    keyid: str
    method: str
    sig: str


@dataclass(frozen=True)
class SignedFile:
    """One metadata file: its ``signed`` object, its signatures and its exact bytes."""

    signed: dict[str, Any]
    signatures: tuple[Signature, ...]
    raw: bytes

    @property
    def version(self) -> int:
        version = self.signed["version"]
        if not isinstance(version, int):  # parse_file made sure; a file built by hand may not
            raise InvalidMetadata("metadata without a version")
        return version

    @property
    def expires(self) -> dt.datetime:
        if "expires" not in self.signed:
            raise InvalidMetadata("metadata without an expiry")
        return parse_expires(self.signed["expires"])

    def hashes(self) -> dict[str, str]:
        return file_hashes(self.raw)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical ``signed`` bytes: exactly what its signatures cover.

        A signature covers neither the role's name nor the GUN, so the same fingerprint
        under two roles or two repositories is the same signed statement copied
        (docs/threat-model.md, "Replays"). Empty for content with no canonical form.
        """
        try:
            return hashlib.sha256(canonical_json(self.signed)).hexdigest()
        except (ValueError, RecursionError):
            return ""

    def signed_by(self, keys: dict[str, TufKey], keyids: list[str]) -> set[str]:
        """The key IDs among ``keyids`` whose signatures verify over the canonical bytes.

        A signature only counts for the key object whose recomputed ID equals its key ID
        (docs/notary-protocol.md, "Signatures").
        Content that has no canonical form (a non-integer number) verifies for no key.
        """
        try:
            message = canonical_json(self.signed)
        except (ValueError, RecursionError):
            return set()
        valid = set()
        for signature in self.signatures:
            key = keys.get(signature.keyid)
            if signature.keyid not in keyids or key is None or key.key_id != signature.keyid:
                continue
            try:
                raw = base64.b64decode(signature.sig, validate=True)
                verify_signature(key, signature.method, raw, message)
            except (ValueError, SignatureError):
                continue
            valid.add(signature.keyid)
        return valid


def parse_file(raw: bytes, *, role: str, gun: str = "") -> SignedFile:
    """Parse a file's envelope (docs/notary-protocol.md, "Repositories and roles"); the
    content is checked by the role's parser."""
    try:
        document = json.loads(raw)
        signed = document["signed"]
        signatures = tuple(
            Signature(str(s["keyid"]), str(s["method"]), str(s["sig"]))
            for s in document.get("signatures") or []
        )
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidMetadata("malformed metadata file", gun=gun, role=role) from error
    except RecursionError as error:  # json.loads on absurdly deep nesting
        raise InvalidMetadata(
            "malformed metadata file (nested too deeply)", gun=gun, role=role
        ) from error
    if not isinstance(signed, dict) or not isinstance(signed.get("version"), int):
        raise InvalidMetadata("metadata without a version", gun=gun, role=role)
    return SignedFile(signed, signatures, raw)


def file_bytes(signed: dict[str, Any], signatures: list[dict[str, str]]) -> bytes:
    """The exact bytes Go writes for an envelope
    (docs/notary-protocol.md, "Canonical JSON and exact bytes")."""
    return _envelope(canonical_json(signed), signatures)


def _envelope(canonical: bytes, signatures: list[dict[str, str]]) -> bytes:
    body = canonical.decode("utf-8").translate(HTML_ESCAPES)
    parts = ",".join(
        '{"keyid":"%s","method":"%s","sig":"%s"}' % (s["keyid"], s["method"], s["sig"])  # noqa: UP031
        for s in signatures
    )
    return ('{"signed":' + body + ',"signatures":[' + parts + "]}").encode("utf-8")


def sign(signed: dict[str, Any], keys: list[SigningKey]) -> bytes:
    """The file bytes of ``signed`` signed by ``keys``; the canonical form is made once."""
    message = canonical_json(signed)
    return _envelope(message, [key.sign(message) for key in keys])


def file_hashes(raw: bytes) -> dict[str, str]:
    """Snapshot and timestamp ``hashes``: base64 of the raw digests (docs/notary-protocol.md,
    "Reading")."""
    return {
        "sha256": base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii"),
        "sha512": base64.b64encode(hashlib.sha512(raw).digest()).decode("ascii"),
    }


# --- Roles ------------------------------------------------------------------------------


def _key(data: Any) -> TufKey:
    try:
        return TufKey(str(data["keytype"]), str(data["keyval"]["public"]))
    except (KeyError, TypeError) as error:
        raise InvalidMetadata("malformed key object") from error


@dataclass(frozen=True)
class RoleKeys:
    keyids: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class Root:
    keys: dict[str, TufKey]
    roles: dict[str, RoleKeys]
    expires: dt.datetime
    version: int

    @classmethod
    def from_signed(cls, signed: dict[str, Any]) -> "Root":
        if signed.get("_type") != "Root":
            raise InvalidMetadata(f"expected a Root, got {signed.get('_type')!r}", role="root")
        try:
            keys = {key_id: _key(key) for key_id, key in (signed.get("keys") or {}).items()}
            roles = {
                name: RoleKeys(tuple(role.get("keyids") or ()), int(role["threshold"]))
                for name, role in (signed.get("roles") or {}).items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidMetadata("malformed root", role="root") from error
        missing = [name for name in BASE_ROLES if name not in roles]
        if missing:
            raise InvalidMetadata(f"root lacks roles {missing}", role="root")
        for name, role in roles.items():
            if role.threshold < 1:  # len(signed_by(...)) >= 0 would accept unsigned data
                raise InvalidMetadata(f"role {name} has threshold {role.threshold}", role="root")
        return cls(keys, roles, parse_expires(signed.get("expires", "")), int(signed["version"]))

    def to_signed(self) -> dict[str, Any]:
        return {
            "_type": "Root",
            "consistent_snapshot": False,
            "expires": format_expires(self.expires),
            "keys": {key_id: key.to_json() for key_id, key in self.keys.items()},
            "roles": {
                name: {"keyids": list(role.keyids), "threshold": role.threshold}
                for name, role in self.roles.items()
            },
            "version": self.version,
        }

    def role_keys(self, role: str) -> dict[str, TufKey]:
        return {
            key_id: self.keys[key_id] for key_id in self.roles[role].keyids if key_id in self.keys
        }


@dataclass(frozen=True)
class Delegation:
    """A delegated role as its parent declares it. ``paths == ("",)`` is all paths
    (docs/notary-protocol.md, "Delegation roles")."""

    name: str
    keyids: tuple[str, ...]
    threshold: int = 1
    paths: tuple[str, ...] = ("",)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"keyids": list(self.keyids), "name": self.name}
        # An empty list must be omitted, never sent
        # (docs/notary-protocol.md, "Canonical JSON and exact bytes").
        if self.paths:
            entry["paths"] = list(self.paths)
        entry["threshold"] = self.threshold
        return entry


@dataclass(frozen=True)
class TargetFile:
    length: int
    hashes: dict[str, str]
    custom: Any = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        # "custom":null breaks the server's hashes
        # (docs/notary-protocol.md, "Canonical JSON and exact bytes").
        if self.custom is not None:
            entry["custom"] = self.custom
        entry["hashes"] = dict(self.hashes)
        entry["length"] = self.length
        return entry


@dataclass(frozen=True)
class Targets:
    """``targets`` or a delegated role (both ``_type`` Targets; docs/notary-protocol.md,
    "Repositories and roles")."""

    expires: dt.datetime
    version: int
    targets: dict[str, TargetFile] = field(default_factory=dict)
    delegation_keys: dict[str, TufKey] = field(default_factory=dict)
    delegations: tuple[Delegation, ...] = ()

    @classmethod
    def from_signed(cls, signed: dict[str, Any], *, role: str = "targets") -> "Targets":
        if signed.get("_type") != "Targets":
            raise InvalidMetadata(f"expected Targets, got {signed.get('_type')!r}", role=role)
        try:
            delegations = signed.get("delegations") or {}
            keys = {key_id: _key(key) for key_id, key in (delegations.get("keys") or {}).items()}
            roles = tuple(
                Delegation(
                    name=str(entry["name"]),
                    keyids=tuple(entry.get("keyids") or ()),
                    threshold=int(entry["threshold"]),
                    paths=tuple(entry.get("paths") or ()),
                )
                for entry in delegations.get("roles") or []
            )
            targets = {
                name: TargetFile(
                    length=int(meta["length"]),
                    hashes=dict(meta.get("hashes") or {}),
                    custom=meta.get("custom"),
                )
                for name, meta in (signed.get("targets") or {}).items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidMetadata("malformed targets", role=role) from error
        for delegation in roles:
            if delegation.threshold < 1:  # len(signed_by(...)) >= 0 would accept anything
                raise InvalidMetadata(
                    f"delegation {delegation.name} has threshold {delegation.threshold}", role=role
                )
        return cls(
            expires=parse_expires(signed.get("expires", "")),
            version=int(signed["version"]),
            targets=targets,
            delegation_keys=keys,
            delegations=roles,
        )

    def to_signed(self) -> dict[str, Any]:
        return {
            "_type": "Targets",
            "delegations": {
                "keys": {key_id: key.to_json() for key_id, key in self.delegation_keys.items()},
                "roles": [delegation.to_json() for delegation in self.delegations],
            },
            "expires": format_expires(self.expires),
            "targets": {name: target.to_json() for name, target in self.targets.items()},
            "version": self.version,
        }


@dataclass(frozen=True)
class FileMeta:
    length: int
    hashes: dict[str, str]

    @property
    def sha256_hex(self) -> str:
        """Snapshot hashes are base64; URLs want lowercase hex (docs/notary-protocol.md,
        "Reading")."""
        return base64.b64decode(self.hashes["sha256"]).hex()


def _meta(signed: dict[str, Any], role: str) -> dict[str, FileMeta]:
    try:
        return {
            name: FileMeta(int(entry["length"]), dict(entry.get("hashes") or {}))
            for name, entry in (signed.get("meta") or {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InvalidMetadata(f"malformed {role} meta", role=role) from error


@dataclass(frozen=True)
class Snapshot:
    expires: dt.datetime
    version: int
    meta: dict[str, FileMeta]

    @classmethod
    def from_signed(cls, signed: dict[str, Any]) -> "Snapshot":
        if signed.get("_type") != "Snapshot":
            raise InvalidMetadata("expected a Snapshot", role="snapshot")
        return cls(
            parse_expires(signed.get("expires", "")),
            int(signed["version"]),
            _meta(signed, "snapshot"),
        )


@dataclass(frozen=True)
class Timestamp:
    expires: dt.datetime
    version: int
    snapshot: FileMeta

    @classmethod
    def from_signed(cls, signed: dict[str, Any]) -> "Timestamp":
        if signed.get("_type") != "Timestamp":
            raise InvalidMetadata("expected a Timestamp", role="timestamp")
        meta = _meta(signed, "timestamp")
        if "snapshot" not in meta:
            raise InvalidMetadata("timestamp names no snapshot", role="timestamp")
        return cls(
            parse_expires(signed.get("expires", "")), int(signed["version"]), meta["snapshot"]
        )
