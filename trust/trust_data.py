"""Verified trust data for evaluations: read through the verifying reader, root pinned for
the repositories Gatehouse manages, and cached per repository.

A cached read is revalidated with one ``GET timestamp.json`` at most every
``GATEHOUSE_TRUST_REVALIDATE_SECONDS``: while the timestamp's version is unchanged, so is
everything it covers. A newer one triggers a full read that refuses rollbacks to before what
was verified.
"""

import json
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from trust import pins
from trust.notary.errors import InvalidMetadata
from trust.notary.reader import Reader
from trust.notary.transport import repository_scope, trust_path
from trust.notary.verified import ReaderLimits, RootPin, VerifiedRepository
from trust.notary_access import notary_client
from trust.replays import history_seen, role_files_seen, signers_histories_seen
from trust.signed_tags import tags_seen_verified

TIMESTAMP_LIMIT = 1024 * 1024
# Only the direct children of targets can hold a signature that counts (policy/evaluation.py).
EVALUATION_LIMITS = ReaderLimits(max_depth=1)
FULL_READ_EVERY = 300.0  # seconds: expiry is rechecked by a full read at least this often


@dataclass
class _Cached:
    repository: VerifiedRepository
    pin: RootPin | None
    read_at: float
    checked_at: float


_cache: dict[str, _Cached] = {}
_lock = threading.Lock()


def root_pin(gun: str) -> RootPin | None:
    """Gatehouse's own root for the repositories it made, the root seen at adoption for
    adopted ones, an admin's pin (exact, else the longest prefix) for any other GUN, and
    nothing (trust on first use) when nothing pins it: ``trust.pins``, as Docker reads it."""
    key_ids = pins.root_pin_key_ids(gun)
    return RootPin.keys(*key_ids) if key_ids else None


def _timestamp_version(gun: str) -> int:
    raw = notary_client().transport.request(
        "GET",
        trust_path(gun, "tuf", "timestamp.json"),
        scope=repository_scope(gun, "pull"),
        gun=gun,
        role="timestamp",
        limit=TIMESTAMP_LIMIT,
    )
    try:
        return int(json.loads(raw)["signed"]["version"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidMetadata("malformed timestamp", gun=gun, role="timestamp") from error


def verified_repository(gun: str) -> VerifiedRepository:
    """The GUN's verified targets and delegations, fresh within a few seconds.

    Raises the reader's errors: ``NotFound`` (no trust data), ``InvalidMetadata`` (does not
    verify) and ``NotaryUnavailable``.
    """
    now = time.monotonic()
    with _lock:
        cached = _cache.get(gun)
    fresh = cached is not None and now - cached.read_at < FULL_READ_EVERY
    # ``fresh`` implies ``cached``; the tests of ``cached is not None`` say so to mypy.
    if (
        fresh
        and cached is not None
        and now - cached.checked_at < settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS
    ):
        return cached.repository  # no query at all: the pin was checked when this was read
    pin = root_pin(gun)
    if (
        fresh
        and cached is not None
        and cached.pin == pin
        and _timestamp_version(gun) == cached.repository.versions.get("timestamp")
    ):
        cached.checked_at = now
        return cached.repository
    known = cached.repository.versions if cached is not None and cached.pin == pin else None
    repository = Reader(notary_client().transport, limits=EVALUATION_LIMITS).read(
        gun, pinned_root=pin, known_versions=known
    )
    if pin is not None or settings.GATEHOUSE_TRUST_ON_FIRST_USE:
        # Only trust data that can count is remembered: otherwise anyone able to publish to
        # any repository could copy a signer's file there, ask for an evaluation, and so
        # make the genuine file a replay (docs/threat-model.md, "Replays").
        walked = history_seen(gun=gun)
        current = role_files_seen(
            gun=gun, files=[(role.name, role.fingerprint) for role in repository.roles.values()]
        )
        signers_histories_seen(gun=gun, new=[*walked.new, *current.new])
        if pin is not None and current.new:
            new_roles = {role for role, _ in current.new}
            tags_seen_verified(
                gun=gun, roles=[r for r in repository.roles.values() if r.name in new_roles]
            )
    with _lock:
        _cache[gun] = _Cached(repository, pin, now, now)
    return repository


def forget(gun: str | None = None) -> None:
    """Drop cached trust data (one GUN, or all): the next evaluation reads afresh."""
    with _lock:
        if gun is None:
            _cache.clear()
        else:
            _cache.pop(gun, None)
