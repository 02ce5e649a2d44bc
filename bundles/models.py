"""Client bundles: Gatehouse's client CA, the public keys kept on users' accounts, and each
signer's own delegation role.

No private key of a user is ever stored; the CA's own key is sealed (``gatehouse.keywrap``).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


class CertificateAuthority(models.Model):
    """A CA of Gatehouse's, created on first use. Its key is sealed under the KEK."""

    name = models.CharField(max_length=64, unique=True)
    certificate = models.TextField(help_text="PEM")
    sealed_private_key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class PublicKey(models.Model):
    """A public key on a user's account, from an issued bundle or a registered certificate.

    ``id`` is the key ID ``notary key list`` prints (the canonical ID); ``tuf_key_id`` is the
    ID of the certificate as an x509 key in delegations (docs/notary-protocol.md, "Key IDs").
    """

    class Source(models.TextChoices):
        ISSUED = "issued", "Issued in a client bundle"
        REGISTERED = "registered", "Registered certificate"

    id = models.CharField(primary_key=True, max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="public_keys"
    )
    tuf_key_id = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100)
    is_signing_key = models.BooleanField(default=False)
    algorithm = models.CharField(max_length=32)
    certificate = models.TextField(help_text="PEM")
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    valid_from = models.DateTimeField(
        null=True, blank=True, help_text="The certificate's notBefore: it counts from then."
    )
    expires_at = models.DateTimeField(help_text="The certificate's notAfter.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(is_signing_key=False),
                name="public_key_revoked_is_never_signing",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id[:12]} of {self.user_id}"


role_name_syntax = RegexValidator(
    regex=r"\A[a-z0-9][a-z0-9_-]{0,63}\Z",
    message="A role name is 1 to 64 lowercase letters, digits, '_' and '-'.",
)


class SigningRole(models.Model):
    """A user's own delegation role, ``targets/<name>``, in every repository they sign.

    Only the user's current signing keys are ever delegated to it, so a signature in it is
    that user's and nobody else's (docs/threat-model.md). A name is never given to anyone
    else: users are never deleted, and rows without a user reserve the names of the team
    roles that earlier versions published, whose files Notary still holds.
    """

    name = models.CharField(max_length=64, unique=True, validators=[role_name_syntax])
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="signing_role",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.role

    @property
    def role(self) -> str:
        return f"targets/{self.name}"


class UsedChallenge(models.Model):
    """A registration nonce that has proved possession of a key once: a nonce serves one
    registration. Only its SHA-256 digest is kept, and only until the nonce would have
    expired anyway."""

    digest = models.CharField(primary_key=True, max_length=64)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"challenge {self.digest[:12]}"
