"""Each signer's own delegation role: its name, given once and never to anyone else.

Notary signs a role file as a whole and the signature names neither the role nor the GUN,
so a signature can only mean "this user signed this" in a role that holds that user's keys
alone (docs/threat-model.md). Every user who may sign a repository therefore gets a direct
child of ``targets``, ``targets/<name>``, which Docker signs as it signs every direct child
it holds a key for.
"""

from django.db import IntegrityError, transaction

from accounts.models import User
from trust.models import SigningRole
from trust.role_names import role_name_base, role_name_candidates


def signing_role_ensure(user: User) -> SigningRole:
    """The user's role, named now if they have none yet; the name stays theirs for good."""
    existing = SigningRole.objects.filter(user=user).first()
    if existing is not None:
        return existing
    taken = set(
        SigningRole.objects.filter(name__startswith=role_name_base(user.username)).values_list(
            "name", flat=True
        )
    )
    for name in role_name_candidates(user.username):
        if name in taken:
            continue
        try:
            with transaction.atomic():
                return SigningRole.objects.create(user=user, name=name)
        except IntegrityError:  # the name, or a role for this user, was made meanwhile
            existing = SigningRole.objects.filter(user=user).first()
            if existing is not None:
                return existing
    raise AssertionError("unreachable")  # pragma: no cover


def signing_role_of(user: User) -> SigningRole | None:
    """The user's role if they have been given one (when they first had a signing key)."""
    return SigningRole.objects.filter(user=user).first()
