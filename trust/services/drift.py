"""The periodic drift check: compare what Notary holds with what it should, record the
difference, and ask for a sync when they differ.

Each check also walks everything the repository published since the last one (its change
feed), so Gatehouse sees every signed file of every repository it manages within one drift
interval of its publication (docs/threat-model.md, "Replays").
"""

import logging
from typing import Any

from django.utils import timezone

from trust import custody, selectors
from trust.metrics import DRIFT_FOUND
from trust.models import Repository
from trust.notary.errors import InvalidMetadata, NotaryError
from trust.notary.keys import tuf_key_canonical_id
from trust.notary.repository import RepositoryState
from trust.notary_access import notary_client
from trust.replays import history_seen, signers_histories_seen
from trust.services.sync_requests import repository_sync_request
from trust.trust_data import verified_repository

logger = logging.getLogger(__name__)


def _drift(repository: Repository, state: RepositoryState) -> dict[str, Any] | None:
    """Roles and keys Notary holds that it should not, and those it lacks."""
    wanted = selectors.desired_delegations(repository)
    desired = {role: {key.tuf_key_id for key in keys} for role, keys in wanted.items()}
    actual = state.delegations()
    custodian = custody.custodian_key().key_id
    missing = {role: keys - actual.get(role, set()) for role, keys in desired.items()}
    unexpected = {
        role: keys - desired.get(role, set()) - {custodian} for role, keys in actual.items()
    }
    if not any(missing.values()) and not any(unexpected.values()):
        return None

    def shown(key_id: str) -> str:  # by the ID `notary key list` shows
        key = state.targets.delegation_keys.get(key_id)
        return tuf_key_canonical_id(key) if key is not None else key_id

    canonical = {key.tuf_key_id: key.id for keys in wanted.values() for key in keys}
    return {
        "missing": {
            role: sorted(canonical.get(k, k) for k in keys)
            for role, keys in missing.items()
            if keys
        },
        "unexpected": {
            role: sorted(shown(k) for k in keys) for role, keys in unexpected.items() if keys
        },
    }


def drift_check(*, repository: Repository) -> dict[str, Any] | None:
    """Read the repository from Notary, record any drift, and ask for a sync if there is;
    walk what it published since the last check."""
    state = notary_client().read_state(repository.gun)
    if not repository.pinned_root_key_ids:  # made before the root certificate was recorded
        root = notary_client().read_root(repository.gun)
        Repository.objects.filter(pk=repository.pk).update(
            pinned_root_key_ids=list(root.roles["root"].keyids)
        )
    seen = history_seen(gun=repository.gun)
    signers_histories_seen(gun=repository.gun, new=seen.new)
    try:
        verified_repository(repository.gun)
    except InvalidMetadata as error:
        logger.warning("drift check of %s: trust data does not verify: %s", repository.gun, error)
    drift = _drift(repository, state)
    Repository.objects.filter(pk=repository.pk).update(
        drift=drift, drift_checked_at=timezone.now(), notary_state=state.to_json()
    )
    if drift is not None:
        DRIFT_FOUND.inc()
        repository_sync_request(repository=repository, actor=None, cause="drift found", delay=0)
    elif any(custody.custodian_key().key_id in keys for keys in state.delegations().values()):
        # Not drift: the custodian keeps signers in. A sync lets it go once a remaining
        # signer has published over its reset; until then the sync changes nothing.
        repository_sync_request(
            repository=repository, actor=None, cause="custodian still delegated", delay=0
        )
    return drift


def drift_check_all() -> int:
    """The periodic check; returns how many repositories had drifted."""
    drifted = 0
    for repository in Repository.objects.filter(state=Repository.State.READY):
        try:
            if drift_check(repository=repository) is not None:
                drifted += 1
        except NotaryError as error:
            logger.warning("drift check of %s failed: %s", repository.gun, error)
    return drifted
