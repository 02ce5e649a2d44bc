"""Reads of public keys, scoped to what the viewer may see: their own, or anyone's for admins."""

from collections.abc import Sequence

from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User
from bundles.models import PublicKey, SigningRole


def public_key_list(*, viewer: User, owner: User) -> QuerySet[PublicKey]:
    if viewer.is_admin or viewer.pk == owner.pk:
        return PublicKey.objects.filter(user=owner).select_related("user__signing_role")
    return PublicKey.objects.none()


def public_keys_shown(
    *, viewer: User, username: str, columns: Sequence[str]
) -> QuerySet[PublicKey]:
    """The keys of the user named ``username`` that ``viewer`` may see (as
    ``public_key_list``), as the API shows them: only ``columns``, and the owner's role name
    (``signing_role_name``) from the same statement. No owner is read: a list or a key that
    is not there is all the same whether its owner is."""
    keys = PublicKey.objects.filter(user__username=username)
    if not viewer.is_admin:
        keys = keys.filter(user=viewer)
    return keys.only(*columns).annotate(signing_role_name=F("user__signing_role__name"))


def signing_role_of(user: User) -> SigningRole | None:
    """The user's role if they have been given one (when they first had a signing key)."""
    return SigningRole.objects.filter(user=user).first()


def signing_keys_current(*, owner: User | None = None) -> QuerySet[PublicKey]:
    """The keys that sign now (marked signing, not revoked, not expired: those a repository
    delegates), of active users; with ``owner``, that user's alone."""
    keys = PublicKey.objects.filter(
        is_signing_key=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
        user__is_active=True,
    )
    return keys if owner is None else keys.filter(user=owner)
