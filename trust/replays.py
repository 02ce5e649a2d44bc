"""Which signed bytes Gatehouse has seen, and where: the defence against replayed role files.

A Notary signature covers a role file's ``signed`` bytes and nothing else: not the role's
name, not the GUN. Anyone who can publish to a repository can therefore upload a copy of a
file someone signed for another role or another repository, and it verifies. Gatehouse
remembers the fingerprint of every role file it reads (evaluations, drift checks, syncs)
with its GUN and role; bytes seen under more than one (GUN, role) are a replay, and no
copy of them counts (docs/threat-model.md, "Replays").
"""

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction

from audit.services import audit_record
from policy.inputs import evaluation_inputs_changed
from trust.models import RoleFileSighting

logger = logging.getLogger(__name__)

_found = 0  # replays this process has found: a reader of identities checks it moved


def replays_found() -> int:
    """How many times this process found new replays; evaluations read identities again
    when it moves while they read trust data."""
    return _found


def role_files_seen(*, gun: str, files: Iterable[tuple[str, str]]) -> int:
    """Remember that ``files`` ((role, fingerprint) pairs) were read from ``gun``; mark
    the fingerprints now seen in more than one place as replayed, audit them, and make
    evaluations read them. One query when nothing is new. Returns how many fingerprints
    became replays. Only delegated roles are remembered: the top-level ``targets`` is
    signed by the repository's own targets key, which no person holds."""
    global _found
    seen = {(role, fp) for role, fp in files if fp and role.startswith("targets/")}
    if not seen:
        return 0
    fingerprints = {fingerprint for _, fingerprint in seen}
    known = set(
        RoleFileSighting.objects.filter(fingerprint__in=fingerprints).values_list(
            "fingerprint", "gun", "role", "replayed"
        )
    )
    places = {(fingerprint, g, r) for fingerprint, g, r, _ in known}
    new = [(role, fp) for role, fp in seen if (fp, gun, role) not in places]
    if not new:
        return 0
    with transaction.atomic():
        RoleFileSighting.objects.bulk_create(
            [RoleFileSighting(fingerprint=fp, gun=gun, role=role) for role, fp in new],
            ignore_conflicts=True,
        )
        everywhere: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for fingerprint, g, r, replayed in (
            RoleFileSighting.objects.filter(fingerprint__in={fp for _, fp in new})
            .order_by("first_seen_at", "id")
            .values_list("fingerprint", "gun", "role", "replayed")
        ):
            everywhere[fingerprint].append((g, r, replayed))
        replayed = {
            fingerprint: where
            for fingerprint, where in everywhere.items()
            if len(where) > 1 and not all(flag for _, _, flag in where)
        }
        if not replayed:
            return 0
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
        evaluation_inputs_changed()
    _found += 1
    return len(replayed)
