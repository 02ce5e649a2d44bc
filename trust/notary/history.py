"""Every delegated role file ever published to a GUN, walked through the change feed.

``walk_history`` (what ``NotaryClient.walk_history`` runs) follows the changefeed's
timestamps to their snapshots and the role files those name, so it sees files that were
current only briefly, which no read of the current state shows (docs/notary-protocol.md,
"The change feed"; docs/threat-model.md, "Replays").
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from trust.notary.errors import InvalidMetadata, NotFound
from trust.notary.metadata import SignedFile, Snapshot, Timestamp, parse_file
from trust.notary.repository import TIMESTAMP_LIMIT, RepositoryFiles
from trust.notary.transport import repository_scope, trust_path

CHANGEFEED_PAGE = 100
CHANGEFEED_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class _Change:
    """One record of the changefeed: a timestamp the server published, or a deletion."""

    change_id: int
    sha256: str
    deletion: bool


@dataclass(frozen=True)
class History:
    """What a walk of a GUN's publications found (``walk_history``).

    ``last_change`` is the changefeed ID to walk on from next time and ``role_hashes`` the
    sha256 of each delegated role's file in the newest snapshot walked, so that the next
    walk fetches only files that changed. ``files`` are every delegated role file that
    any publication since held, with its role.
    """

    last_change: int
    role_hashes: dict[str, str]
    files: tuple[tuple[str, SignedFile], ...] = ()


def walk_history(
    files: RepositoryFiles,
    gun: str,
    *,
    after: int = 0,
    role_hashes: Mapping[str, str] | None = None,
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
    found: list[tuple[str, SignedFile]] = []
    last = after
    while True:
        records = _changes(files, gun, last)
        before = last
        for record in records:
            last = max(last, record.change_id)
            if record.deletion:
                hashes = {}
                continue
            try:
                timestamp = _timestamp_by_checksum(files, gun, record.sha256)
                snapshot_meta = Timestamp.from_signed(timestamp.signed).snapshot
                snapshot_file = files.by_hash(gun, "snapshot", snapshot_meta)
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
                    found.append((role, files.by_hash(gun, role, meta)))
                except (NotFound, InvalidMetadata):
                    continue  # nobody can read it, so it counts nowhere
        # A feed that does not move on would be walked for ever.
        if len(records) < CHANGEFEED_PAGE or last == before:
            return History(last, hashes, tuple(found))


def _changes(files: RepositoryFiles, gun: str, after: int) -> list[_Change]:
    raw = files.transport.request(
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


def _timestamp_by_checksum(files: RepositoryFiles, gun: str, digest: str) -> SignedFile:
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InvalidMetadata("the changefeed names no valid sha256", gun=gun, role="timestamp")
    raw = files.get(gun, f"timestamp.{digest}.json", role="timestamp", limit=TIMESTAMP_LIMIT)
    if hashlib.sha256(raw).hexdigest() != digest:
        raise InvalidMetadata("timestamp does not match its checksum", gun=gun, role="timestamp")
    return parse_file(raw, role="timestamp", gun=gun)
