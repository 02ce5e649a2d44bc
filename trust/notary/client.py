"""Repository operations, each in as few round trips as the protocol allows.

``NotaryClient`` initialises repositories with a server-managed snapshot, reads their
targets and delegations, keeps their delegations at a desired state without ever locking a
delegate out (``delegations.py``), walks every version published (``history.py``), rotates
the snapshot key to the server, and deletes trust data. The reads and the publish it builds
on are ``repository.RepositoryFiles``. What it relies on is in docs/notary-protocol.md:
"Reading", "Publishing", "Server-managed snapshot and timestamp" and "The lock-out hazard".
"""

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric import ec

from trust.notary.delegations import DelegationUpdate, ordered_roles, set_delegations
from trust.notary.errors import NotaryRejected, RepositoryExists
from trust.notary.history import History, walk_history
from trust.notary.keys import SigningKey, TufKey, load_public_key
from trust.notary.metadata import (
    ROOT_LIFETIME,
    TARGETS_LIFETIME,
    Delegation,
    RoleKeys,
    Root,
    SignedFile,
    Targets,
    expires_in,
    sign,
)
from trust.notary.repository import RepositoryFiles, RepositoryState, file_meta
from trust.notary.transport import Transport, repository_scope, trust_path


class NotaryClient:
    """Writes to one notary-server. Every method names the GUN it works on."""

    def __init__(
        self,
        transport: Transport,
        *,
        expiry_margin: dt.timedelta = dt.timedelta(days=7),
        max_attempts: int = 3,
        on_role_file: Callable[[str, str, SignedFile], None] | None = None,
    ) -> None:
        """``on_role_file(gun, role, file)`` sees every targets or delegated role file this
        client reads, so its caller can remember which signed bytes it saw where."""
        self.transport = transport
        self.expiry_margin = expiry_margin
        self.max_attempts = max_attempts
        self.files = RepositoryFiles(transport, on_role_file=on_role_file)

    def read_state(self, gun: str) -> RepositoryState:
        """timestamp -> snapshot -> targets: three requests (``RepositoryFiles.read_state``)."""
        return self.files.read_state(gun)

    def read_root(self, gun: str) -> Root:
        """The stored root as the server answers it, unverified: for a writer that checks
        which keys it names (``NotFound`` when the GUN has no trust data)."""
        return self.files.read_root(gun)

    def initialize(
        self,
        gun: str,
        *,
        root_key: SigningKey,
        targets_key: SigningKey,
        delegations: Mapping[str, Iterable[TufKey]] | None = None,
    ) -> RepositoryState:
        """Root and targets v1, snapshot managed by the server from the start.

        Three requests: the timestamp key, the snapshot key, and one publish
        (docs/notary-protocol.md, "Server-managed snapshot and timestamp"). ``root_key``
        must carry a certificate for this GUN (``keys.root_signing_key``).
        """
        timestamp_key = self.files.server_key(gun, "timestamp")
        snapshot_key = self.files.server_key(gun, "snapshot")
        keys = {
            k.key_id: k for k in (root_key.public, targets_key.public, snapshot_key, timestamp_key)
        }
        root = Root(
            keys=keys,
            roles={
                "root": RoleKeys((root_key.key_id,), 1),
                "snapshot": RoleKeys((snapshot_key.key_id,), 1),
                "targets": RoleKeys((targets_key.key_id,), 1),
                "timestamp": RoleKeys((timestamp_key.key_id,), 1),
            },
            expires=expires_in(ROOT_LIFETIME),
            version=1,
        )
        desired = {
            role: {k.key_id: k for k in role_keys}
            for role, role_keys in (delegations or {}).items()
        }
        targets = Targets(
            expires=expires_in(TARGETS_LIFETIME),
            version=1,
            delegation_keys={
                k_id: k for role_keys in desired.values() for k_id, k in role_keys.items()
            },
            delegations=tuple(
                Delegation(role, tuple(sorted(role_keys)))
                for role, role_keys in ordered_roles(desired.items())
                if role_keys
            ),
        )
        root_bytes = sign(root.to_signed(), [root_key])
        targets_bytes = sign(targets.to_signed(), [targets_key])
        try:
            self.files.publish(gun, {"root": root_bytes, "targets": targets_bytes})
        except NotaryRejected as error:
            # Over an existing root the server answers ErrBadRoot ("could not rotate trust"),
            # or VERSION when the very same certificate signs: ask it whether a root exists.
            if not self.files.has_root(gun):
                raise
            raise RepositoryExists(
                "already has trust data on the server",
                gun=gun,
                code=error.code,
                status=error.status,
            ) from error
        return RepositoryState(
            gun,
            targets,
            {"root": file_meta(root_bytes), "targets": file_meta(targets_bytes)},
        )

    def set_delegations(
        self,
        gun: str,
        desired: Mapping[str, Iterable[TufKey]],
        *,
        targets_key: SigningKey,
        custodian: SigningKey,
        state: RepositoryState | None = None,
    ) -> DelegationUpdate:
        """Make the repository's delegations ``desired`` (role -> keys, all paths), never
        locking a delegate out: see ``delegations.set_delegations``."""
        return set_delegations(
            self.files,
            gun,
            desired,
            targets_key=targets_key,
            custodian=custodian,
            state=state,
            expiry_margin=self.expiry_margin,
            max_attempts=self.max_attempts,
        )

    def walk_history(
        self, gun: str, *, after: int = 0, role_hashes: Mapping[str, str] | None = None
    ) -> History:
        """Every delegated role file published to ``gun`` since changefeed ID ``after``:
        see ``history.walk_history``."""
        return walk_history(self.files, gun, after=after, role_hashes=role_hashes)

    def rotate_snapshot_key(self, gun: str, *, root_key: ec.EllipticCurvePrivateKey) -> None:
        """Hand the snapshot key to the server (``notary key rotate <gun> snapshot -r``).

        ``root_key`` is the private root key; its certificate comes from the stored root
        (docs/notary-protocol.md, "Server-managed snapshot and timestamp").
        """
        new_key = self.files.server_key(gun, "snapshot", method="POST")
        root = self.read_root(gun)
        signer = _root_signer(root, root_key, gun)
        keys = {
            k_id: k for k_id, k in root.keys.items() if k_id not in root.roles["snapshot"].keyids
        }
        keys[new_key.key_id] = new_key
        rotated = replace(
            root,
            keys=keys,
            roles={**root.roles, "snapshot": RoleKeys((new_key.key_id,), 1)},
            version=root.version + 1,
        )
        self.files.publish(gun, {"root": sign(rotated.to_signed(), [signer])})

    def server_manages_snapshot(self, gun: str, root: Root) -> bool:
        """Whether the server holds the snapshot key that ``root`` names.

        ``GET snapshot.key`` answers the root's key when the server holds it, and mints a new
        one otherwise, so comparing the two tells which it is (docs/notary-protocol.md,
        "Server-managed snapshot and timestamp").
        """
        return self.files.server_key(gun, "snapshot").key_id in root.roles["snapshot"].keyids

    def delete(self, gun: str) -> None:
        """Remove every version of every role of the GUN; an unknown GUN is fine too
        (docs/notary-protocol.md, "Publishing")."""
        self.transport.request(
            "DELETE", trust_path(gun, "tuf"), scope=repository_scope(gun, "*"), gun=gun
        )


def _root_signer(root: Root, root_key: ec.EllipticCurvePrivateKey, gun: str) -> SigningKey:
    """The root key object that names ``root_key`` in this root (its GUN's certificate)."""
    for key_id in root.roles["root"].keyids:
        key = root.keys.get(key_id)
        try:
            if key is not None and load_public_key(key) == root_key.public_key():
                return SigningKey(root_key, key)
        except ValueError:
            continue
    raise NotaryRejected(
        "the root key given is not this repository's root key", gun=gun, role="root"
    )
