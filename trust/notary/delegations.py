"""Keeping a repository's delegations at a desired state without locking a delegate out.

``set_delegations`` (what ``NotaryClient.set_delegations`` runs) publishes the new
delegations, and resets, signed by the custodian key, each role file that would no longer
verify with its role's new keys; a reset ``targets/releases`` keeps the tags the remaining
signers vouch for. What it relies on is in docs/notary-protocol.md: "The lock-out hazard"
and "Keeping signers in".
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from trust.notary.errors import InvalidMetadata, VersionConflict
from trust.notary.keys import SigningKey, TufKey
from trust.notary.metadata import (
    RELEASES,
    TARGETS_LIFETIME,
    Delegation,
    SignedFile,
    TargetFile,
    Targets,
    expires_in,
    sign,
)
from trust.notary.repository import RepositoryFiles, RepositoryState, file_meta


@dataclass(frozen=True)
class DelegationUpdate:
    changed: bool
    state: RepositoryState
    reset_roles: tuple[str, ...] = ()


def set_delegations(
    files: RepositoryFiles,
    gun: str,
    desired: Mapping[str, Iterable[TufKey]],
    *,
    targets_key: SigningKey,
    custodian: SigningKey,
    state: RepositoryState | None,
    expiry_margin: dt.timedelta,
    max_attempts: int,
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
    again and the update retried, up to ``max_attempts`` times in all. A stored file
    "verifies" only if it does not expire within ``expiry_margin``.
    """
    wanted = {role: {k.key_id: k for k in keys} for role, keys in desired.items()}
    wanted = {role: keys for role, keys in wanted.items() if keys}
    if state is not None and _needs_stored_files(state, wanted, custodian):
        state = None  # a delegate may have published since that state was read
    for attempt in range(1, max_attempts + 1):
        current = state or files.read_state(gun)
        try:
            return _apply_delegations(files, current, wanted, targets_key, custodian, expiry_margin)
        except VersionConflict:
            if attempt == max_attempts:
                raise
            state = None
    raise AssertionError("unreachable")  # pragma: no cover


def _apply_delegations(
    files: RepositoryFiles,
    state: RepositoryState,
    wanted: dict[str, dict[str, TufKey]],
    targets_key: SigningKey,
    custodian: SigningKey,
    expiry_margin: dt.timedelta,
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
        stored = files.by_hash(gun, role, meta)
        # A role that comes back is reset whatever its file says: signed while the role
        # held other keys (a team's, in earlier versions), its entries are not all the
        # new holder's statements, even if the holder's key signed it last.
        if role in held and _verifies(stored, keys, expiry_margin):
            continue
        final[role][custodian.key_id] = custodian.public
        with_custodian = {**keys, custodian.key_id: custodian.public}
        if custodian.key_id in held.get(role, set()) and _verifies(
            stored, with_custodian, expiry_margin
        ):
            continue  # reset already published; no delegate has signed since
        kept = (
            _vouched_releases(files, state, stored, wanted, expiry_margin)
            if role == RELEASES
            else {}
        )
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
    files.publish(gun, {"targets": targets_bytes, **resets})
    published = dict(state.snapshot_meta)
    published["targets"] = file_meta(targets_bytes)
    published.update({role: file_meta(data) for role, data in resets.items()})
    return DelegationUpdate(
        changed=True, state=RepositoryState(gun, targets, published), reset_roles=tuple(resets)
    )


def _vouched_releases(
    files: RepositoryFiles,
    state: RepositoryState,
    stored: SignedFile,
    wanted: dict[str, dict[str, TufKey]],
    expiry_margin: dt.timedelta,
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
        signed = files.by_hash(state.gun, role, meta)
        if not _verifies(signed, keys, expiry_margin):
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


def _verifies(stored: SignedFile, keys: dict[str, TufKey], expiry_margin: dt.timedelta) -> bool:
    """Would a delegate's client accept this role file with these keys (threshold 1)?"""
    try:
        expires = stored.expires
    except InvalidMetadata:
        return False
    soon = dt.datetime.now(dt.UTC) + expiry_margin
    return expires > soon and bool(stored.signed_by(keys, list(keys)))


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


_Keys = TypeVar("_Keys")


def ordered_roles(items: Iterable[tuple[str, _Keys]]) -> list[tuple[str, _Keys]]:
    """``targets/releases`` first (Docker reads it first), then by name."""
    return sorted(items, key=lambda item: (item[0] != RELEASES, item[0]))


def _merge_order(
    current: tuple[Delegation, ...], final: dict[str, dict[str, TufKey]]
) -> tuple[Delegation, ...]:
    """Existing roles keep their place; new ones follow in ``ordered_roles`` order."""
    kept = [d.name for d in current if d.name in final]
    added = [name for name, _ in ordered_roles(final.items()) if name not in kept]
    return tuple(Delegation(name, tuple(sorted(final[name]))) for name in kept + added)


def _same_delegations(
    targets: Targets, delegations: tuple[Delegation, ...], keys: dict[str, TufKey]
) -> bool:
    def shape(
        roles: Iterable[Delegation],
    ) -> dict[str, tuple[frozenset[str], int, tuple[str, ...]]]:
        return {d.name: (frozenset(d.keyids), d.threshold, d.paths) for d in roles}

    return shape(targets.delegations) == shape(delegations) and targets.delegation_keys == keys
