"""A GUN's trust data on notary-server, as a writer reads and publishes it.

``RepositoryState`` is what the server holds for a GUN, as far as a writer needs it.
``RepositoryFiles`` holds the reads and the publish that every write is built from: files
by name or by their checked sha256, the current state, the stored root, the keys the server
holds. The operations themselves build on it: ``client.NotaryClient``,
``delegations.set_delegations`` and ``history.walk_history`` (docs/notary-protocol.md,
"Reading", "Publishing").
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trust.notary.errors import InvalidMetadata, NotFound
from trust.notary.keys import TufKey
from trust.notary.metadata import (
    KEY_ROLES_LIMIT,
    FileMeta,
    Root,
    SignedFile,
    Snapshot,
    Targets,
    Timestamp,
    file_hashes,
    parse_file,
)
from trust.notary.transport import KEY_LIMIT, Transport, multipart, repository_scope, trust_path

TIMESTAMP_LIMIT = 1024 * 1024  # docs/notary-protocol.md, "Reading" (size limits)


@dataclass(frozen=True)
class RepositoryState:
    """What the server holds for a GUN, as far as a writer needs it.

    ``snapshot_meta`` names every role file the snapshot knows, including those of roles
    removed since (their versions must keep growing: docs/notary-protocol.md, "Publishing").
    """

    gun: str
    targets: Targets
    snapshot_meta: dict[str, FileMeta] = field(default_factory=dict)

    def delegations(self) -> dict[str, set[str]]:
        """Role -> the key IDs it holds now."""
        return {role.name: set(role.keyids) for role in self.targets.delegations}

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON form, so a caller can keep the state and update in one request."""
        return {
            "gun": self.gun,
            "targets": self.targets.to_signed(),
            "snapshot_meta": {
                role: {"length": meta.length, "hashes": meta.hashes}
                for role, meta in self.snapshot_meta.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RepositoryState":
        return cls(
            data["gun"],
            Targets.from_signed(data["targets"]),
            {
                role: FileMeta(int(meta["length"]), dict(meta["hashes"]))
                for role, meta in data["snapshot_meta"].items()
            },
        )


def file_meta(raw: bytes) -> FileMeta:
    """How a snapshot names the file ``raw``: its length and hashes."""
    return FileMeta(len(raw), file_hashes(raw))


def _key_from_json(raw: bytes, *, gun: str, role: str) -> TufKey:
    try:
        document = json.loads(raw)
        return TufKey(str(document["keytype"]), str(document["keyval"]["public"]))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidMetadata("malformed key from the server", gun=gun, role=role) from error


class RepositoryFiles:
    """Reads and publishes the trust data files of one notary-server; each call names its GUN.

    ``on_role_file(gun, role, file)`` sees every targets or delegated role file read by
    hash, so a caller can remember which signed bytes it saw where.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        on_role_file: Callable[[str, str, SignedFile], None] | None = None,
    ) -> None:
        self.transport = transport
        self.on_role_file = on_role_file

    def get(
        self, gun: str, tail: str, *, role: str, limit: int, actions: tuple[str, ...] = ("pull",)
    ) -> bytes:
        """``GET /v2/<gun>/_trust/tuf/<tail>``: the bytes as the server answers them."""
        return self.transport.request(
            "GET",
            trust_path(gun, "tuf", tail),
            scope=repository_scope(gun, *actions),
            gun=gun,
            role=role,
            limit=limit,
        )

    def by_hash(self, gun: str, role: str, meta: FileMeta) -> SignedFile:
        """A file by its sha256 name, checked against the length and hashes given.

        The sha256 is required: without it any bytes of the right length would pass
        (docs/notary-protocol.md, "Reading").
        """
        try:
            digest = meta.sha256_hex
        except (KeyError, ValueError, TypeError) as error:
            raise InvalidMetadata("no valid sha256 names the file", gun=gun, role=role) from error
        if len(digest) != 64:
            raise InvalidMetadata("no valid sha256 names the file", gun=gun, role=role)
        raw = self.get(gun, f"{role}.{digest}.json", role=role, limit=meta.length)
        if (
            len(raw) != meta.length
            or hashlib.sha256(raw).hexdigest() != digest
            or ("sha512" in meta.hashes and file_hashes(raw)["sha512"] != meta.hashes["sha512"])
        ):
            raise InvalidMetadata("file does not match the hashes that name it", gun=gun, role=role)
        signed = parse_file(raw, role=role, gun=gun)
        if self.on_role_file is not None and (role == "targets" or role.startswith("targets/")):
            self.on_role_file(gun, role, signed)
        return signed

    def read_state(self, gun: str) -> RepositoryState:
        """timestamp -> snapshot -> targets: three requests, never ``GET <role>.json``
        (docs/notary-protocol.md, "Reading")."""
        timestamp = parse_file(
            self.get(gun, "timestamp.json", role="timestamp", limit=TIMESTAMP_LIMIT),
            role="timestamp",
            gun=gun,
        )
        snapshot_file = self.by_hash(
            gun, "snapshot", Timestamp.from_signed(timestamp.signed).snapshot
        )
        snapshot = Snapshot.from_signed(snapshot_file.signed)
        if "targets" not in snapshot.meta:
            raise InvalidMetadata("snapshot names no targets", gun=gun, role="snapshot")
        targets_file = self.by_hash(gun, "targets", snapshot.meta["targets"])
        return RepositoryState(gun, Targets.from_signed(targets_file.signed), dict(snapshot.meta))

    def read_root(self, gun: str) -> Root:
        """The stored root as the server answers it, unverified: for a writer that checks
        which keys it names (``NotFound`` when the GUN has no trust data)."""
        raw = self.get(gun, "root.json", role="root", limit=KEY_ROLES_LIMIT)
        return Root.from_signed(parse_file(raw, role="root", gun=gun).signed)

    def has_root(self, gun: str) -> bool:
        try:
            self.read_root(gun)
        except NotFound:
            return False
        return True

    def server_key(self, gun: str, role: str, *, method: str = "GET") -> TufKey:
        """The key the server holds for ``role`` (``POST``: a new one, to rotate to)."""
        raw = self.transport.request(
            method,
            trust_path(gun, "tuf", f"{role}.key"),
            scope=repository_scope(gun, *(("*",) if method == "POST" else ("push", "pull"))),
            gun=gun,
            role=role,
            limit=KEY_LIMIT,
        )
        return _key_from_json(raw, gun=gun, role=role)

    def publish(self, gun: str, files: dict[str, bytes]) -> None:
        """One publish of role files, in one multipart body (docs/notary-protocol.md,
        "Publishing")."""
        body, content_type = multipart(files)
        self.transport.request(
            "POST",
            trust_path(gun, "tuf"),
            scope=repository_scope(gun, "push", "pull"),
            gun=gun,
            role="+".join(files),
            body=body,
            content_type=content_type,
        )
