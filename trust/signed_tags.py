"""The tags signers have signed: a memory that explains a tag after its role is gone.

When a signer leaves every signer team of a repository (or is deactivated, or loses their
last signing key), the next sync removes their role ``targets/<name>`` and rebuilds
``targets/releases`` without their tags, so the trust data no longer says they ever
signed. ``SignedTag`` keeps, per (GUN, role, tag), the digest a signer signed, so that
"Check an image" and the repository's page can say why a tag is gone.

Only what a signer provably signed is remembered: a signer's own role (a direct child of
``targets``) of a GUN whose root is pinned, either read verified (``trust_data``) with one
of the role owner's keys among its signers, or a published version (the history walk,
``replays.history_seen``) carrying a valid signature by one of the owner's keys.
``targets/releases`` and ``targets`` are signed by anyone allowed to publish, so they
are never remembered. Recording runs only for role files new to the GUN, so reading
trust data that did not change costs nothing. A row whose file turns out to be a replay
explains nothing (``remembered``).
"""

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from bundles.models import PublicKey, SigningRole
from trust import pins
from trust.models import RoleFileSighting, SignedTag
from trust.notary.errors import InvalidMetadata
from trust.notary.keys import TufKey
from trust.notary.metadata import RELEASES, SignedFile, TargetFile, Targets
from trust.notary.verified import VerifiedRole
from trust.selectors import tuf_keys

TAG_MAX = SignedTag._meta.get_field("tag").max_length or 0


def target_sha256_hex(target: TargetFile) -> str | None:
    """The target's sha256 as lowercase hex; None when it has no usable one."""
    encoded = target.hashes.get("sha256")
    if not isinstance(encoded, str):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        return None
    return raw.hex() if len(raw) == 32 else None


def _signer_role(role: str) -> bool:
    """A signer's own role: a direct child of ``targets`` other than ``targets/releases``."""
    return role.startswith("targets/") and role.count("/") == 1 and role != RELEASES


@dataclass(frozen=True)
class _Signed:
    role: str
    fingerprint: str
    targets: Mapping[str, TargetFile]


def _record(gun: str, files: Iterable[_Signed], owners: Mapping[str, int]) -> int:
    """Upsert a row per tag of each file whose role has an owner in ``owners`` (role →
    user id); later files win. Returns how many rows were written."""
    rows: dict[tuple[str, str], SignedTag] = {}
    for signed in files:
        owner = owners.get(signed.role)
        if owner is None:
            continue
        for tag, target in signed.targets.items():
            digest = target_sha256_hex(target)
            # A NUL is valid JSON in a target name but no PostgreSQL text holds it: storing
            # it would fail every read of the GUN, whose history walk would retry it forever.
            if digest is None or len(tag) > TAG_MAX or "\x00" in tag:
                continue
            rows[(signed.role, tag)] = SignedTag(
                gun=gun,
                role=signed.role,
                tag=tag,
                digest=f"sha256:{digest}",
                signer_id=owner,
                fingerprint=signed.fingerprint,
            )
    if rows:
        SignedTag.objects.bulk_create(
            rows.values(),
            update_conflicts=True,
            unique_fields=["gun", "role", "tag"],
            update_fields=["digest", "fingerprint", "signer", "last_seen_at"],
        )
    return len(rows)


def _owners(roles: Iterable[str]) -> dict[str, int]:
    """Each signer role's owner (user id); roles without one (reserved names) are left out."""
    names = {role.removeprefix("targets/") for role in roles}
    return {
        f"targets/{name}": user_id
        for name, user_id in SigningRole.objects.filter(
            name__in=names, user__isnull=False
        ).values_list("name", "user_id")
    }


def tags_seen_verified(*, gun: str, roles: Iterable[VerifiedRole]) -> int:
    """Remember the tags of verified role files of ``gun``, read with a pinned root: each
    signer role whose verified signers include one of its owner's keys."""
    wanted = [role for role in roles if _signer_role(role.name) and role.targets]
    if not wanted:
        return 0
    owners = _owners(role.name for role in wanted)
    signed_by_owner = set(
        PublicKey.objects.filter(
            user_id__in=set(owners.values()),
            id__in={key_id for role in wanted for key_id in role.signer_key_ids},
        ).values_list("user_id", "id")
    )
    proved = {
        role.name: owners[role.name]
        for role in wanted
        if role.name in owners
        and any((owners[role.name], key_id) in signed_by_owner for key_id in role.signer_key_ids)
    }
    return _record(
        gun, (_Signed(role.name, role.fingerprint, role.targets) for role in wanted), proved
    )


def tags_seen_published(*, gun: str, files: Iterable[tuple[str, SignedFile]]) -> int:
    """Remember the tags of published versions of ``gun``'s signer roles (the history walk,
    which checks hashes, not signatures): each file validly signed by one of its role
    owner's keys (any of them: it was signed when it was published), and only while a pin
    covers the GUN's root."""
    wanted = [(role, file) for role, file in files if _signer_role(role)]
    if not wanted or not pins.root_pin_key_ids(gun):
        return 0
    owners = _owners(role for role, _ in wanted)
    owned = list(
        PublicKey.objects.filter(user_id__in=set(owners.values())).only("user_id", "certificate")
    )
    keys: dict[int, dict[str, TufKey]] = {}
    for key, tuf_key in zip(owned, tuf_keys(owned), strict=True):
        keys.setdefault(key.user_id, {})[tuf_key.key_id] = tuf_key
    signed: list[_Signed] = []
    for role, file in wanted:
        owner_keys = keys.get(owners.get(role, 0), {})
        if not owner_keys or not file.signed_by(owner_keys, list(owner_keys)):
            continue
        try:
            targets = Targets.from_signed(file.signed, role=role).targets
        except InvalidMetadata:
            continue
        signed.append(_Signed(role, file.fingerprint, targets))
    return _record(gun, signed, owners)


def remembered(*, gun: str, tag: str | None = None) -> QuerySet[SignedTag]:
    """What signers signed in ``gun`` (one tag, or all), with their signers, leaving out
    rows whose file is a replay: a copy explains nothing about its role's owner."""
    rows = SignedTag.objects.filter(gun=gun).select_related("signer")
    if tag is not None:
        rows = rows.filter(tag=tag)
    return rows.filter(
        ~Exists(RoleFileSighting.objects.filter(fingerprint=OuterRef("fingerprint"), replayed=True))
    )


def forgotten(*, gun: str) -> None:
    """A deleted repository's memory goes with it: a new repository of the same GUN starts
    with no signed tags."""
    SignedTag.objects.filter(gun=gun).delete()
