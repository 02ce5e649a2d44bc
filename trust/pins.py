"""Root key pins: which root keys must sign the trust data of a GUN.

Docker's trust pinning (``content-trust.trust-pinning.root-keys`` in ``daemon.json``) and
Notary's ``trustpinning`` map patterns to root key IDs. A pattern is a GUN or a GUN prefix
ending in ``*``; for a GUN, an exact entry wins, else the longest prefix it starts with, else
nothing pins it. Gatehouse reads the same map by the same rules (``resolve_pin``), so the
snippet a cluster applies and Gatehouse's own evaluations agree on every GUN.

The map has three sources, in this order of authority: the repositories Gatehouse made (its
one root key), the adopted ones (the root seen at adoption), and the admins' pins
(``RootKeyPin``) for repositories Gatehouse neither made nor adopted. The first two are
exact GUNs and beat an admin's pin of the same GUN.
"""

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Subquery

from accounts.models import User
from audit.services import audit_record
from trust.models import CustodyKey, Repository, RootKeyPin
from trust.notary import name_patterns, references
from trust.signals import trust_inputs_changed

logger = logging.getLogger(__name__)

WILDCARD = "*"
PATTERN_MAX = cast(int, RootKeyPin._meta.get_field("pattern").max_length)  # the field sets one
MAX_KEY_IDS = 20
SHOWN_MAX = 20  # characters of a bad key ID repeated in its error message

_KEY_ID = re.compile(r"\A[0-9a-f]{64}\Z")

PATTERN_SYNTAX = (
    "A pattern is a GUN such as registry.example.com/ci/app (Docker's repository names; "
    "a short name such as ci/app is read as docker.io/ci/app), or a prefix of one ending "
    "in *, such as registry.example.com/ci/*."
)


# --- Resolution (no database) ---------------------------------------------------------------


def resolve_pin(gun: str, pins: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The key IDs that pin ``gun`` in ``pins`` by Notary's rules: the exact entry, else the
    longest pattern ending in ``*`` whose prefix ``gun`` starts with, else ``None``."""
    exact = pins.get(gun)
    if exact is not None:
        return list(exact)
    longest: str | None = None
    for pattern in pins:
        if (
            pattern.endswith(WILDCARD)
            and gun.startswith(pattern[:-1])
            and (longest is None or len(pattern) > len(longest))
        ):
            longest = pattern
    return None if longest is None else list(pins[longest])


def _candidate_patterns(gun: str) -> list[str]:
    """Every pattern that could pin ``gun``: itself and each of its prefixes with ``*``."""
    candidates = [gun] if len(gun) <= PATTERN_MAX else []
    candidates += [gun[:end] + WILDCARD for end in range(min(len(gun), PATTERN_MAX - 1) + 1)]
    return candidates


# --- Reads ----------------------------------------------------------------------------------


def _pins_of(repositories: QuerySet[Repository], admin_pins: QuerySet[RootKeyPin]) -> dict:
    """The map from these rows, in two queries: each repository's row carries Gatehouse's
    root key ID (the key ``trust.selectors.root_key_id`` reads) by a subquery.

    Admin pins first, so the exact entries of adopted and then Gatehouse-made repositories
    overwrite an admin's pin of the same GUN. An entry without key IDs is left out: it would
    pin nothing, and Docker would refuse every root for it.
    """
    root = CustodyKey.objects.filter(kind=CustodyKey.Kind.ROOT).values("key_id")[:1]
    rows = repositories.annotate(gatehouse_root_key_id=Subquery(root)).values_list(
        "gun", "adopted", "pinned_root_key_ids", "gatehouse_root_key_id"
    )
    pins: dict[str, list[str]] = {
        pattern: list(key_ids)
        for pattern, key_ids in admin_pins.values_list("pattern", "key_ids")
        if key_ids
    }
    made: dict[str, list[str]] = {}
    for gun, adopted, pinned_key_ids, gatehouse_root_key_id in rows:
        if adopted:
            if pinned_key_ids:
                pins[gun] = list(pinned_key_ids)
        elif pinned_key_ids:  # the ID of the GUN's own root certificate, as Docker compares
            made[gun] = list(pinned_key_ids)
        elif gatehouse_root_key_id:  # made before that ID was recorded: the key's own ID
            made[gun] = [gatehouse_root_key_id]
    pins.update(made)
    return pins


def root_pins() -> dict[str, list[str]]:
    """Every pin: pattern → root key IDs, from the repositories Gatehouse made, those it
    adopted and the admins' pins (two queries)."""
    return _pins_of(Repository.objects.all(), RootKeyPin.objects.all())


def root_pin_key_ids(gun: str, pins: Mapping[str, Sequence[str]] | None = None) -> list[str] | None:
    """The root key IDs that pin ``gun``, or ``None`` when nothing does.

    Without ``pins`` only the rows that could pin ``gun`` are read (its repository, and the
    admin pins named ``gun`` or a prefix of it with ``*``: two indexed queries), which
    resolve the same as the whole of ``root_pins()``.
    """
    if pins is None:
        pins = _pins_of(
            Repository.objects.filter(gun=gun),
            RootKeyPin.objects.filter(pattern__in=_candidate_patterns(gun)),
        )
    return resolve_pin(gun, pins)


def trust_pinning_snippet() -> dict:
    """The ``daemon.json`` section that makes Docker pin exactly what Gatehouse pins."""
    return {
        "content-trust": {
            "trust-pinning": {"root-keys": dict(sorted(root_pins().items()))},
            "mode": "enforced",
        }
    }


def root_key_pin_list() -> QuerySet[RootKeyPin]:
    """The admins' pins, by pattern."""
    return RootKeyPin.objects.select_related("created_by").order_by("pattern")


# --- Writes ---------------------------------------------------------------------------------


def _normalised_pattern(pattern: Any) -> tuple[str, list[str]]:
    """The pattern with its GUN part as Docker normalises it (``trust.notary.references``:
    ``app`` → ``docker.io/library/app``, ``ci/*`` → ``docker.io/ci/*``; a prefix without a
    ``/`` is a prefix of registry hosts, kept as it is), and what is wrong with it."""
    if not isinstance(pattern, str) or not pattern:
        return "", ["Give a GUN, or a GUN prefix ending in *. " + PATTERN_SYNTAX]
    if len(pattern) > PATTERN_MAX:
        return "", [f"The pattern is too long: at most {PATTERN_MAX} characters."]
    if pattern == WILDCARD:
        return "", [
            "A bare * would pin every repository to these keys; give a prefix such as "
            "registry.example.com/*."
        ]
    body, wildcard = (pattern[:-1], True) if pattern.endswith(WILDCARD) else (pattern, False)
    if WILDCARD in body:
        return "", ["* may only end a pattern, once, as in registry.example.com/ci/*."]
    try:
        if wildcard:
            return name_patterns.parse_gun_prefix(body) + WILDCARD, []
        return references.parse_name(body), []
    except references.InvalidName as error:
        return "", [f"Not a GUN: {error}. {PATTERN_SYNTAX}"]


_DUPLICATE = "This pattern is pinned already; change the key IDs of its pin instead."


def _validated_pattern(pattern: Any) -> str:
    pattern, errors = _normalised_pattern(pattern.strip() if isinstance(pattern, str) else pattern)
    if not errors and Repository.objects.filter(gun=pattern).exists():
        errors = [
            "Gatehouse manages this repository, so its root is pinned already: by "
            "Gatehouse's root key, or by the root seen when it was adopted."
        ]
    elif not errors and RootKeyPin.objects.filter(pattern=pattern).exists():
        errors = [_DUPLICATE]
    if errors:
        raise ValidationError({"pattern": errors})
    return pattern


def _validated_key_ids(key_ids: Any) -> list[str]:
    """Lowercase, each once, in the order given."""
    if isinstance(key_ids, str) or not isinstance(key_ids, Iterable):
        raise ValidationError({"key_ids": ["Give a list of root key IDs."]})
    normalised: list[str] = []
    errors: list[str] = []
    for key_id in key_ids:
        text = key_id.strip().lower() if isinstance(key_id, str) else None
        if text is None or not _KEY_ID.match(text):
            shown = str(key_id)
            shown = shown if len(shown) <= SHOWN_MAX else shown[:SHOWN_MAX] + "…"
            errors.append(
                f"Not a key ID: {shown!r}. Give the 64 hexadecimal digits of a root "
                "certificate's ID, as root.json names it."
            )
        elif text not in normalised:
            normalised.append(text)
    if not errors and not normalised:
        errors.append("Give at least one root key ID.")
    if len(normalised) > MAX_KEY_IDS:
        errors.append(f"Give at most {MAX_KEY_IDS} key IDs.")
    if errors:
        raise ValidationError({"key_ids": errors[:MAX_KEY_IDS]})
    return normalised


def _validated(**checks: Any) -> dict[str, Any]:
    """Run every check, so one answer names every field that is wrong."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field, (check, value) in checks.items():
        try:
            values[field] = check(value)
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    return values


def _pins_changed() -> None:
    """The next evaluation reads pins afresh (``trust.receivers.pins_changed``)."""
    trust_inputs_changed.send(sender=RootKeyPin)


@transaction.atomic
def root_key_pin_create(*, actor: User | None, pattern: str, key_ids: list[str]) -> RootKeyPin:
    """Pin the root of ``pattern`` (a GUN, or a prefix ending in ``*``) to ``key_ids``."""
    values = _validated(
        pattern=(_validated_pattern, pattern), key_ids=(_validated_key_ids, key_ids)
    )
    try:
        with transaction.atomic():
            pin = RootKeyPin.objects.create(
                pattern=values["pattern"], key_ids=values["key_ids"], created_by=actor
            )
    except IntegrityError as error:  # pinned at the same moment by another request
        raise ValidationError({"pattern": [_DUPLICATE]}) from error
    _pins_changed()
    audit_record(
        action="root_pin.created",
        actor=actor,
        target_type="root_pin",
        target_id=pin.pattern,
        after={"key_ids": pin.key_ids},
    )
    logger.info("root key pin %s created by %s", pin.pattern, actor)
    return pin


@transaction.atomic
def root_key_pin_update(*, actor: User | None, pin: RootKeyPin, key_ids: list[str]) -> RootKeyPin:
    """Change the key IDs of a pin; its pattern is fixed."""
    new_key_ids = _validated_key_ids(key_ids)
    before = {"key_ids": list(pin.key_ids)}
    pin.key_ids = new_key_ids
    pin.save(update_fields=["key_ids", "updated_at"])
    _pins_changed()
    audit_record(
        action="root_pin.updated",
        actor=actor,
        target_type="root_pin",
        target_id=pin.pattern,
        before=before,
        after={"key_ids": pin.key_ids},
    )
    logger.info("root key pin %s updated by %s", pin.pattern, actor)
    return pin


@transaction.atomic
def root_key_pin_delete(*, actor: User | None, pin: RootKeyPin) -> None:
    pattern = pin.pattern
    audit_record(
        action="root_pin.deleted",
        actor=actor,
        target_type="root_pin",
        target_id=pattern,
        before={"key_ids": list(pin.key_ids)},
    )
    pin.delete()
    _pins_changed()
    logger.info("root key pin %s deleted by %s", pattern, actor)
