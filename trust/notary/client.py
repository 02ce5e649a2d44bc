"""Repository operations, each in as few round trips as the protocol allows.

``NotaryClient`` initialises repositories with a server-managed snapshot, reads their
targets and delegations, keeps their delegations at a desired state without ever locking a
delegate out, rotates the snapshot key to the server, and deletes trust data. What it
relies on is in docs/notary-protocol.md: "Reading", "Publishing",
"Server-managed snapshot and timestamp" and "The lock-out hazard".
"""

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from trust.notary.errors import (
    InvalidMetadata,
    NotaryRejected,
    NotFound,
    RepositoryExists,
    VersionConflict,
)
from trust.notary.keys import SigningKey, TufKey, load_public_key
from trust.notary.metadata import (
    KEY_ROLES_LIMIT,
    RELEASES,
    ROOT_LIFETIME,
    TARGETS_LIFETIME,
    Delegation,
    FileMeta,
    RoleKeys,
    Root,
    SignedFile,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
    expires_in,
    file_hashes,
    parse_file,
    sign,
)
from trust.notary.transport import (
    KEY_LIMIT,
    Transport,
    multipart,
    repository_scope,
    trust_path,
)

TIMESTAMP_LIMIT = 1024 * 1024  # docs/notary-protocol.md, "Reading" (size limits)
CHANGEFEED_PAGE = 100
CHANGEFEED_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class _Change:
    """One record of the changefeed: a timestamp the server published, or a deletion."""

    change_id: int
    sha256: str
    deletion: bool


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


@dataclass(frozen=True)
class History:
    """What a walk of a GUN's publications found (``NotaryClient.walk_history``).

    ``last_change`` is the changefeed ID to walk on from next time and ``role_hashes`` the
    sha256 of each delegated role's file in the newest snapshot walked, so that the next
    walk fetches only files that changed. ``files`` are every delegated role file that
    any publication since held, with its role.
    """

    last_change: int
    role_hashes: dict[str, str]
    files: tuple[tuple[str, SignedFile], ...] = ()


@dataclass(frozen=True)
class DelegationUpdate:
    changed: bool
    state: RepositoryState
    reset_roles: tuple[str, ...] = ()


def _key_from_json(raw: bytes, *, gun: str, role: str) -> TufKey:
    try:
        document = json.loads(raw)
        return TufKey(str(document["keytype"]), str(document["keyval"]["public"]))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidMetadata("malformed key from the server", gun=gun, role=role) from error


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
        self.on_role_file = on_role_file

    # -- low-level reads --------------------------------------------------------------

    def _tuf(
        self, gun: str, tail: str, *, role: str, limit: int, actions: tuple[str, ...] = ("pull",)
    ) -> bytes:
        return self.transport.request(
            "GET",
            trust_path(gun, "tuf", tail),
            scope=repository_scope(gun, *actions),
            gun=gun,
            role=role,
            limit=limit,
        )

    def _by_hash(self, gun: str, role: str, meta: FileMeta) -> SignedFile:
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
        raw = self._tuf(gun, f"{role}.{digest}.json", role=role, limit=meta.length)
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
            self._tuf(gun, "timestamp.json", role="timestamp", limit=TIMESTAMP_LIMIT),
            role="timestamp",
            gun=gun,
        )
        snapshot_file = self._by_hash(
            gun, "snapshot", Timestamp.from_signed(timestamp.signed).snapshot
        )
        snapshot = Snapshot.from_signed(snapshot_file.signed)
        if "targets" not in snapshot.meta:
            raise InvalidMetadata("snapshot names no targets", gun=gun, role="snapshot")
        targets_file = self._by_hash(gun, "targets", snapshot.meta["targets"])
        return RepositoryState(gun, Targets.from_signed(targets_file.signed), dict(snapshot.meta))

    def _server_key(self, gun: str, role: str, *, method: str = "GET") -> TufKey:
        raw = self.transport.request(
            method,
            trust_path(gun, "tuf", f"{role}.key"),
            scope=repository_scope(gun, *(("*",) if method == "POST" else ("push", "pull"))),
            gun=gun,
            role=role,
            limit=KEY_LIMIT,
        )
        return _key_from_json(raw, gun=gun, role=role)

    def _publish(self, gun: str, files: dict[str, bytes]) -> None:
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

    # -- operations ---------------------------------------------------------------------

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
        timestamp_key = self._server_key(gun, "timestamp")
        snapshot_key = self._server_key(gun, "snapshot")
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
                for role, role_keys in _ordered(desired.items())
                if role_keys
            ),
        )
        root_bytes = sign(root.to_signed(), [root_key])
        targets_bytes = sign(targets.to_signed(), [targets_key])
        try:
            self._publish(gun, {"root": root_bytes, "targets": targets_bytes})
        except NotaryRejected as error:
            # Over an existing root the server answers ErrBadRoot ("could not rotate trust"),
            # or VERSION when the very same certificate signs: ask it whether a root exists.
            if not self._has_root(gun):
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
            {"root": _file_meta(root_bytes), "targets": _file_meta(targets_bytes)},
        )

    def read_root(self, gun: str) -> Root:
        """The stored root as the server answers it, unverified: for a writer that checks
        which keys it names (``NotFound`` when the GUN has no trust data)."""
        raw = self._tuf(gun, "root.json", role="root", limit=KEY_ROLES_LIMIT)
        return Root.from_signed(parse_file(raw, role="root", gun=gun).signed)

    def _has_root(self, gun: str) -> bool:
        try:
            self.read_root(gun)
        except NotFound:
            return False
        return True

    def set_delegations(
        self,
        gun: str,
        desired: Mapping[str, Iterable[TufKey]],
        *,
        targets_key: SigningKey,
        custodian: SigningKey,
        state: RepositoryState | None = None,
    ) -> DelegationUpdate:
        """Make the repository's delegations ``desired`` (role -> keys, all paths).

        Roles left without keys are removed. Nothing is published when nothing changes. With
        a known ``state`` a change that only adds keys is one request. When a role's key set
        shrinks or a role comes back, its stored file is checked against the new set; if it
        would no longer verify, the custodian key joins the role and an empty role file at
        the stored version + 1, signed by the custodian, goes out in the same publish, so
        the remaining delegates can still sign (docs/notary-protocol.md,
        "The lock-out hazard"). The custodian leaves the role once the stored file verifies
        without it. A reset ``targets/releases`` is not empty: it keeps each entry that some
        other role still vouches for, identically, in a stored file that verifies with that
        role's new keys, so no tag a remaining signer signed disappears or is repointed
        ("Keeping signers in", same document). On a ``VERSION`` conflict the state is read
        again and the update retried, a bounded number of times.
        """
        wanted = {role: {k.key_id: k for k in keys} for role, keys in desired.items()}
        wanted = {role: keys for role, keys in wanted.items() if keys}
        if state is not None and _needs_stored_files(state, wanted, custodian):
            state = None  # a delegate may have published since that state was read
        for attempt in range(1, self.max_attempts + 1):
            current = state or self.read_state(gun)
            try:
                return self._apply_delegations(current, wanted, targets_key, custodian)
            except VersionConflict:
                if attempt == self.max_attempts:
                    raise
                state = None
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_delegations(
        self,
        state: RepositoryState,
        wanted: dict[str, dict[str, TufKey]],
        targets_key: SigningKey,
        custodian: SigningKey,
    ) -> DelegationUpdate:
        gun = state.gun
        held = state.delegations()
        final: dict[str, dict[str, TufKey]] = {}
        resets: dict[str, bytes] = {}
        for role, keys in wanted.items():
            final[role] = dict(keys)
            meta = state.snapshot_meta.get(role)
            if meta is None:
                continue  # never published: no delegate can be locked out of it
            old = held.get(role, set()) - {custodian.key_id}
            shrinks = role not in held or not old <= set(keys)
            if not shrinks and custodian.key_id not in held.get(role, set()):
                continue
            stored = self._by_hash(gun, role, meta)
            # A role that comes back is reset whatever its file says: signed while the role
            # held other keys (a team's, in earlier versions), its entries are not all the
            # new holder's statements, even if the holder's key signed it last.
            if role in held and self._verifies(stored, keys):
                continue
            final[role][custodian.key_id] = custodian.public
            with_custodian = {**keys, custodian.key_id: custodian.public}
            if custodian.key_id in held.get(role, set()) and self._verifies(stored, with_custodian):
                continue  # reset already published; no delegate has signed since
            kept = self._vouched_releases(state, stored, wanted) if role == RELEASES else {}
            resets[role] = sign(
                Targets(
                    expires=expires_in(TARGETS_LIFETIME), version=stored.version + 1, targets=kept
                ).to_signed(),
                [custodian],
            )
        delegations = _merge_order(state.targets.delegations, final)
        delegation_keys = {k_id: k for keys in final.values() for k_id, k in keys.items()}
        if not resets and _same_delegations(state.targets, delegations, delegation_keys):
            return DelegationUpdate(changed=False, state=state)
        targets = replace(
            state.targets,
            version=state.targets.version + 1,
            expires=expires_in(TARGETS_LIFETIME),
            delegation_keys=delegation_keys,
            delegations=delegations,
        )
        targets_bytes = sign(targets.to_signed(), [targets_key])
        self._publish(gun, {"targets": targets_bytes, **resets})
        published = dict(state.snapshot_meta)
        published["targets"] = _file_meta(targets_bytes)
        published.update({role: _file_meta(data) for role, data in resets.items()})
        return DelegationUpdate(
            changed=True, state=RepositoryState(gun, targets, published), reset_roles=tuple(resets)
        )

    def _vouched_releases(
        self, state: RepositoryState, stored: SignedFile, wanted: dict[str, dict[str, TufKey]]
    ) -> dict[str, TargetFile]:
        """The ``targets/releases`` to keep, from what the remaining signers' own roles say.

        Each tag the stored releases names is kept when a role that stays names it the same
        way (name, length and hashes) in a stored file its new keys verify. When it does
        not, but every such role that names the tag agrees on one entry, that entry is put
        back: whoever leaves cannot take along a repointing of someone else's tag. A tag
        the remaining roles disagree on, or none names, is dropped.
        """
        try:
            releases = Targets.from_signed(stored.signed, role=RELEASES).targets
        except InvalidMetadata:
            return {}
        vouched: dict[str, list[TargetFile]] = {}
        for role, keys in wanted.items():
            meta = state.snapshot_meta.get(role)
            if role == RELEASES or meta is None:
                continue
            signed = self._by_hash(state.gun, role, meta)
            if not self._verifies(signed, keys):
                continue
            try:
                named = Targets.from_signed(signed.signed, role=role).targets
            except InvalidMetadata:
                continue
            for name, target in named.items():
                if name in releases:
                    vouched.setdefault(name, []).append(target)
        kept: dict[str, TargetFile] = {}
        for name, targets in vouched.items():
            entry = releases[name]
            if any(_same_target(entry, target) for target in targets):
                kept[name] = entry
            elif all(_same_target(targets[0], target) for target in targets):
                kept[name] = targets[0]
        return kept

    def _verifies(self, stored: SignedFile, keys: dict[str, TufKey]) -> bool:
        """Would a delegate's client accept this role file with these keys (threshold 1)?"""
        try:
            expires = stored.expires
        except InvalidMetadata:
            return False
        soon = dt.datetime.now(dt.UTC) + self.expiry_margin
        return expires > soon and bool(stored.signed_by(keys, list(keys)))

    def walk_history(
        self, gun: str, *, after: int = 0, role_hashes: Mapping[str, str] | None = None
    ) -> History:
        """Every delegated role file published to ``gun`` since changefeed ID ``after``.

        The server keeps every version of every file and answers any of them by checksum,
        and its changefeed lists each timestamp it published. So each timestamp since
        ``after`` names a snapshot, and each snapshot the exact files of that moment: the
        walk sees files that were current only briefly, which no read of the current state
        shows (docs/threat-model.md, "Replays"). Files are checked against the hashes that
        name them, not against signatures: what they are used for is to recognise copies.
        """
        hashes = dict(role_hashes or {})
        files: list[tuple[str, SignedFile]] = []
        last = after
        while True:
            records = self._changes(gun, last)
            before = last
            for record in records:
                last = max(last, record.change_id)
                if record.deletion:
                    hashes = {}
                    continue
                try:
                    timestamp = self._timestamp_by_checksum(gun, record.sha256)
                    snapshot_meta = Timestamp.from_signed(timestamp.signed).snapshot
                    snapshot_file = self._by_hash(gun, "snapshot", snapshot_meta)
                except NotFound:
                    continue  # an earlier incarnation of the GUN, deleted since
                snapshot = Snapshot.from_signed(snapshot_file.signed)
                for role, meta in sorted(snapshot.meta.items()):
                    if role.count("/") != 1 or not role.startswith("targets/"):
                        continue  # nested roles never count (docs/threat-model.md)
                    digest = meta.sha256_hex
                    if hashes.get(role) == digest:
                        continue
                    hashes[role] = digest
                    try:
                        files.append((role, self._by_hash(gun, role, meta)))
                    except (NotFound, InvalidMetadata):
                        continue  # nobody can read it, so it counts nowhere
            # A feed that does not move on would be walked for ever.
            if len(records) < CHANGEFEED_PAGE or last == before:
                return History(last, hashes, tuple(files))

    def _changes(self, gun: str, after: int) -> list["_Change"]:
        raw = self.transport.request(
            "GET",
            trust_path(gun, "changefeed", change_id=after, records=CHANGEFEED_PAGE),
            scope=repository_scope(gun, "pull"),
            gun=gun,
            role="changefeed",
            limit=CHANGEFEED_LIMIT,
        )
        try:
            records = json.loads(raw).get("records") or []
            return [
                _Change(int(r["ID"]), str(r["SHA256"]).lower(), r.get("Category") == "deletion")
                for r in records
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidMetadata("malformed changefeed", gun=gun, role="changefeed") from error

    def _timestamp_by_checksum(self, gun: str, digest: str) -> SignedFile:
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise InvalidMetadata("the changefeed names no valid sha256", gun=gun, role="timestamp")
        raw = self._tuf(gun, f"timestamp.{digest}.json", role="timestamp", limit=TIMESTAMP_LIMIT)
        if hashlib.sha256(raw).hexdigest() != digest:
            raise InvalidMetadata(
                "timestamp does not match its checksum", gun=gun, role="timestamp"
            )
        return parse_file(raw, role="timestamp", gun=gun)

    def rotate_snapshot_key(self, gun: str, *, root_key: ec.EllipticCurvePrivateKey) -> None:
        """Hand the snapshot key to the server (``notary key rotate <gun> snapshot -r``).

        ``root_key`` is the private root key; its certificate comes from the stored root
        (docs/notary-protocol.md, "Server-managed snapshot and timestamp").
        """
        new_key = self._server_key(gun, "snapshot", method="POST")
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
        self._publish(gun, {"root": sign(rotated.to_signed(), [signer])})

    def server_manages_snapshot(self, gun: str, root: Root) -> bool:
        """Whether the server holds the snapshot key that ``root`` names.

        ``GET snapshot.key`` answers the root's key when the server holds it, and mints a new
        one otherwise, so comparing the two tells which it is (docs/notary-protocol.md,
        "Server-managed snapshot and timestamp").
        """
        return self._server_key(gun, "snapshot").key_id in root.roles["snapshot"].keyids

    def delete(self, gun: str) -> None:
        """Remove every version of every role of the GUN; an unknown GUN is fine too
        (docs/notary-protocol.md, "Publishing")."""
        self.transport.request(
            "DELETE", trust_path(gun, "tuf"), scope=repository_scope(gun, "*"), gun=gun
        )


def _needs_stored_files(
    state: RepositoryState, wanted: dict[str, dict[str, TufKey]], custodian: SigningKey
) -> bool:
    """Whether the update must look at stored role files, which only a fresh read shows:
    a role that loses keys, a role that comes back, or one the custodian is in.

    A role the known snapshot has never named was never published: only a delegated role
    can be, and delegations change only through this client, which records what it
    publishes (a targets file changed behind its back makes the publish a ``VERSION``
    conflict, and the retry reads afresh). So adding a person's new role is one request.
    """
    held = state.delegations()
    for role, keys in wanted.items():
        current = held.get(role)
        if current is None:
            if role in state.snapshot_meta:
                return True
            continue
        if custodian.key_id in current or not current <= set(keys):
            return True
    return False


def _same_target(one: TargetFile, other: TargetFile) -> bool:
    return (one.length, one.hashes) == (other.length, other.hashes)


def _file_meta(raw: bytes) -> FileMeta:
    return FileMeta(len(raw), file_hashes(raw))


_Keys = TypeVar("_Keys")


def _ordered(items: Iterable[tuple[str, _Keys]]) -> list[tuple[str, _Keys]]:
    """``targets/releases`` first (Docker reads it first), then by name."""
    return sorted(items, key=lambda item: (item[0] != RELEASES, item[0]))


def _merge_order(
    current: tuple[Delegation, ...], final: dict[str, dict[str, TufKey]]
) -> tuple[Delegation, ...]:
    """Existing roles keep their place; new ones follow in ``_ordered`` order."""
    kept = [d.name for d in current if d.name in final]
    added = [name for name, _ in _ordered(final.items()) if name not in kept]
    return tuple(Delegation(name, tuple(sorted(final[name]))) for name in kept + added)


def _same_delegations(
    targets: Targets, delegations: tuple[Delegation, ...], keys: dict[str, TufKey]
) -> bool:
    def shape(
        roles: Iterable[Delegation],
    ) -> dict[str, tuple[frozenset[str], int, tuple[str, ...]]]:
        return {d.name: (frozenset(d.keyids), d.threshold, d.paths) for d in roles}

    return shape(targets.delegations) == shape(delegations) and targets.delegation_keys == keys


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
