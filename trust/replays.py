"""Which signed bytes Gatehouse has seen, and where: the defence against replayed role files.

A Notary signature covers a role file's ``signed`` bytes and nothing else: not the role's
name, not the GUN. Anyone who can publish to a repository can therefore upload a copy of a
file someone signed for another role or another repository, and it verifies. Gatehouse
remembers the fingerprint of every role file it reads (evaluations, drift checks, syncs),
and of every version the server published (its changefeed, walked on each fresh read), with
its GUN and role; bytes seen under more than one (GUN, role) are a replay, and no copy of
them counts (docs/threat-model.md, "Replays").
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from audit.services import audit_record
from trust.models import HistoryCursor, Repository, RoleFileSighting
from trust.notary.errors import InvalidMetadata, NotFound
from trust.notary.metadata import RELEASES
from trust.notary_access import notary_client
from trust.signals import trust_inputs_changed
from trust.signed_tags import forgotten as signed_tags_forgotten
from trust.signed_tags import tags_seen_published

logger = logging.getLogger(__name__)

_found = 0  # replays this process has found: a reader of identities checks it moved


def replays_found() -> int:
    """How many times this process found new replays; evaluations read identities again
    when it moves while they read trust data."""
    return _found


@dataclass(frozen=True)
class Seen:
    """What ``role_files_seen`` learnt: the (role, fingerprint) pairs new for the GUN, and
    how many fingerprints became replays."""

    new: tuple[tuple[str, str], ...] = ()
    replays: int = 0


def _remembered(role: str) -> bool:
    """Only ``targets/releases`` and the direct children of ``targets`` can hold a signature
    that counts or be copied into a signer's role from. A nested role never counts, and
    remembering it would let anyone who can create one delegated to a signer's certificate
    turn that signer's genuine file into a "replay"."""
    return role.startswith("targets/") and role.count("/") == 1


def role_files_seen(*, gun: str, files: Iterable[tuple[str, str]]) -> Seen:
    """Remember that ``files`` ((role, fingerprint) pairs) were read from ``gun``; mark
    the fingerprints now seen in more than one place as replayed, audit them, and make
    evaluations read them. One query when nothing is new."""
    global _found
    seen = {(role, fp) for role, fp in files if fp and _remembered(role)}
    if not seen:
        return Seen()
    fingerprints = {fingerprint for _, fingerprint in seen}
    places = set(
        RoleFileSighting.objects.filter(fingerprint__in=fingerprints).values_list(
            "fingerprint", "gun", "role"
        )
    )
    new = tuple(sorted((role, fp) for role, fp in seen if (fp, gun, role) not in places))
    if not new:
        return Seen()
    with transaction.atomic():
        _lock_fingerprints({fp for _, fp in new})
        RoleFileSighting.objects.bulk_create(
            [RoleFileSighting(fingerprint=fp, gun=gun, role=role) for role, fp in new],
            ignore_conflicts=True,
        )
        everywhere: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
        for fingerprint, g, r, flag in (
            RoleFileSighting.objects.filter(fingerprint__in={fp for _, fp in new})
            .order_by("first_seen_at", "id")
            .values_list("fingerprint", "gun", "role", "replayed")
        ):
            everywhere[fingerprint].append((g, r, flag))
        replayed = {
            fingerprint: where
            for fingerprint, where in everywhere.items()
            if len(where) > 1 and not all(flag for _, _, flag in where)
        }
        if not replayed:
            return Seen(new)
        RoleFileSighting.objects.filter(fingerprint__in=replayed).update(replayed=True)
        for fingerprint, where in replayed.items():
            audit_record(
                action="trust.replay_detected",
                actor=None,
                target_type="repository",
                target_id=gun,
                after={
                    "fingerprint": fingerprint,
                    "seen_under": [f"{g} {r}" for g, r, _ in where],
                },
            )
            logger.warning(
                "replayed role file %s: the same signed bytes under %s",
                fingerprint[:12],
                ", ".join(f"{g} {r}" for g, r, _ in where),
            )
        trust_inputs_changed.send(sender=RoleFileSighting)
    _found += 1
    return Seen(new, len(replayed))


def _lock_fingerprints(fingerprints: set[str]) -> None:
    """Serialise the first sightings of the same bytes: two transactions that each insert
    one place and then look for the other would both miss it. On PostgreSQL a transaction
    lock per fingerprint; SQLite lets one writer in at a time anyway."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for fingerprint in sorted(fingerprints):
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [fingerprint])


def repository_forgotten(*, gun: str, job_id: int) -> None:
    """Before a repository's trust data is deleted: walk what it published, then file every
    sighting under the deleted incarnation, so that a copy of its files uploaded to a new
    repository of the same GUN is a replay, not a signature made for it."""
    try:
        history_seen(gun=gun)
    except (NotFound, InvalidMetadata) as error:  # nothing (readable) was ever published
        logger.warning("%s: history not walked before deletion: %s", gun, error)
    RoleFileSighting.objects.filter(gun=gun).update(gun=f"{gun[:200]} (deleted by job {job_id})")
    signed_tags_forgotten(gun=gun)


def history_seen(*, gun: str) -> Seen:
    """Walk the GUN's publications since the last walk and remember every delegated role
    file they held, including versions that were current only for a moment: a copy of
    one of those is recognised as a replay too, and the tags its signers signed in their
    own roles are remembered (``trust.signed_tags``). One request when nothing is new."""
    cursor, _ = HistoryCursor.objects.get_or_create(gun=gun)
    history = notary_client().walk_history(
        gun, after=cursor.change_id, role_hashes=cursor.role_hashes
    )
    seen = role_files_seen(
        gun=gun, files=[(role, file.fingerprint) for role, file in history.files]
    )
    # Each publication is walked once, so what its signers signed is remembered once.
    tags_seen_published(gun=gun, files=history.files)
    if history.last_change != cursor.change_id:
        HistoryCursor.objects.filter(pk=cursor.pk, change_id__lte=history.last_change).update(
            change_id=history.last_change, role_hashes=history.role_hashes
        )
    return seen


def signers_histories_seen(*, gun: str, new: Iterable[tuple[str, str]]) -> None:
    """For each signer's role file new to ``gun``, walk the other repositories that signer
    signs, so that a copy of a file they signed there is known for one before it counts
    here, even when Gatehouse had not read the original yet."""
    names = {role.removeprefix("targets/") for role, _ in new if role != RELEASES}
    if not names:
        return
    guns = (
        Repository.objects.filter(
            signer_teams__memberships__user__signing_role__name__in=names,
            state=Repository.State.READY,
        )
        .exclude(gun=gun)
        .values_list("gun", flat=True)
        .distinct()
    )
    for other in guns:
        history_seen(gun=other)
