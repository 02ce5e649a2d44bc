"""What every evaluation reads besides trust data, cached per process, and the counter that
says it changed.

The policy, every signer (their own role, whether they are active, their teams), every key
of theirs and every replayed fingerprint are read together and kept until the generation
in ``EvaluationInputs`` moves; checking it is one query, so evaluations and admission
reviews stay fast and still see a change of policy, membership, account, key or replay at
the very next evaluation. ``evaluation_inputs_changed`` runs in the transaction of each
change: policy's own writes call it, and ``policy.receivers`` calls it for the identity
and trust signals. Key validity is not cached: it is checked against the clock at each
evaluation.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import cast

from django.db import connection
from django.db.models import F

from accounts.models import Membership
from bundles.models import PublicKey, SigningRole
from policy.evaluation import Identities, Signer, SignerKey
from policy.models import EvaluationInputs
from policy.rules import Policy
from policy.selectors import policy_current
from trust.models import RoleFileSighting


@dataclass(frozen=True)
class EvaluationContext:
    """What every evaluation needs besides trust data, read together and cached."""

    policy: Policy
    identities: Identities


_context_cache: dict[str, object] = {}


def _generation() -> tuple[str, int]:
    """(epoch, generation), by the cheapest query there is: it runs for every evaluation."""
    table = EvaluationInputs._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT epoch, generation FROM {table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        inputs, _ = EvaluationInputs.objects.get_or_create(pk=1)
        row = (inputs.epoch, inputs.generation)
    return str(row[0]).replace("-", ""), int(row[1])


def evaluation_context() -> EvaluationContext:
    """The policy and everyone who may have signed, as of now."""
    generation = _generation()
    if _context_cache.get("generation") == generation:
        return cast(EvaluationContext, _context_cache["context"])  # as stored below
    context = EvaluationContext(policy_current(), _identities())
    _context_cache.update(generation=generation, context=context)
    return context


def _identities() -> Identities:
    """Four queries: signers, their teams, their keys, the replayed fingerprints."""
    teams: dict[int, set[str]] = defaultdict(set)
    for user_id, team in Membership.objects.values_list("user_id", "team__name"):
        teams[user_id].add(team)
    signers = {
        f"targets/{name}": Signer(username, f"targets/{name}", active, frozenset(teams[user_id]))
        for name, user_id, username, active in SigningRole.objects.filter(
            user__isnull=False
        ).values_list("name", "user_id", "user__username", "user__is_active")
    }
    keys = {
        key_id: SignerKey(
            owner=username,
            signing=signing,
            revoked=revoked_at is not None,
            valid_from=valid_from,
            valid_until=expires_at,
        )
        for key_id, username, signing, revoked_at, valid_from, expires_at in (
            PublicKey.objects.filter(user__signing_role__isnull=False).values_list(
                "id", "user__username", "is_signing_key", "revoked_at", "valid_from", "expires_at"
            )
        )
    }
    replays: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for fingerprint, gun, role in (
        RoleFileSighting.objects.filter(replayed=True)
        .order_by("first_seen_at", "id")
        .values_list("fingerprint", "gun", "role")
    ):
        replays[fingerprint].append((gun, role))
    return Identities(
        signers=signers,
        keys=keys,
        replays={fingerprint: tuple(places) for fingerprint, places in replays.items()},
    )


def evaluation_inputs_changed() -> None:
    """Make every process read the policy and identities afresh at its next evaluation."""
    EvaluationInputs.objects.get_or_create(pk=1)
    EvaluationInputs.objects.filter(pk=1).update(generation=F("generation") + 1)
