"""What every evaluation reads besides trust data, cached per process, and the counter that
says it changed.

The policy and the owners of every key that may count as a signature are read together and
kept until the generation in ``EvaluationInputs`` moves; checking it is one query, so
evaluations and admission reviews stay fast and still see a change of policy, membership,
account or key at the very next evaluation. Writers call ``evaluation_inputs_changed`` in
the transaction of their change.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import F

from accounts.models import Membership
from bundles.models import PublicKey
from policy.evaluation import KeyOwner, PolicyRules
from policy.models import EvaluationInputs
from policy.selectors import policy_admission


@dataclass(frozen=True)
class EvaluationContext:
    """What every evaluation needs besides trust data, read together and cached."""

    rules: PolicyRules
    exempt_namespaces: tuple[str, ...]
    owners: dict[str, KeyOwner]


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
    """The policy and every key that may count as a signature, as of now."""
    generation = _generation()
    if _context_cache.get("generation") == generation:
        return _context_cache["context"]
    rules, exempt_namespaces = policy_admission()
    context = EvaluationContext(rules, exempt_namespaces, _all_key_owners())
    _context_cache.update(generation=generation, context=context)
    return context


def _all_key_owners() -> dict[str, KeyOwner]:
    rows = list(
        PublicKey.objects.filter(revoked_at__isnull=True, user__is_active=True).values_list(
            "tuf_key_id", "user__username", "user_id"
        )
    )
    teams: dict[int, set[str]] = defaultdict(set)
    for user_id, team in Membership.objects.filter(user__is_active=True).values_list(
        "user_id", "team__name"
    ):
        teams[user_id].add(team)
    return {key_id: KeyOwner(name, frozenset(teams[user_id])) for key_id, name, user_id in rows}


def evaluation_inputs_changed() -> None:
    """Make every process read the policy and key owners afresh at its next evaluation."""
    EvaluationInputs.objects.get_or_create(pk=1)
    EvaluationInputs.objects.filter(pk=1).update(generation=F("generation") + 1)
