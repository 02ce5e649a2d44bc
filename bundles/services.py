"""Writes for client bundles and the public keys on users' accounts."""

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from functools import cache
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.signing import BadSignature, SignatureExpired, TimestampSigner
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.signals import identity_change_announce
from audit.services import audit_record
from bundles import signing_guide
from bundles.archive import client_bundle_zip
from bundles.certificates import (
    CertificateRejected,
    PossessionNotProven,
    check_registered_certificate,
    issue_client_certificate,
    new_certificate_authority,
    verify_possession,
)
from bundles.models import CertificateAuthority, PublicKey, SigningRole, UsedChallenge
from bundles.role_names import role_name_base, role_name_candidates
from gatehouse.keywrap import seal, unseal
from trust.notary.keys import canonical_key_id, certificate_tuf_key

logger = logging.getLogger(__name__)

CLIENT_CA = "client"
LABEL_MAX = cast(int, PublicKey._meta.get_field("label").max_length)  # the field sets one
# Registration nonces: signed by Gatehouse (bound to who asked), valid this long, used once.
CHALLENGE_SALT = "bundles.key-registration-challenge"
CHALLENGE_PREFIX = "gatehouse-key-registration"
CHALLENGE_SECONDS = 600
NONCE_MAX = 200


class KeyAlreadyRegistered(Exception):
    """The key of a registered certificate is on an account already (someone's, maybe not yours)."""


@dataclass(frozen=True)
class IssuedBundle:
    archive: bytes
    key: PublicKey


@dataclass(frozen=True)
class Challenge:
    """A nonce to sign with the key of a certificate one registers, and when it expires."""

    nonce: str
    expires_at: dt.datetime


def _ca_purpose(name: str) -> str:
    return f"bundles.ca:{name}"


def client_ca_ensure() -> CertificateAuthority:
    """The client CA, created on first use; concurrent first uses agree on one."""
    existing = CertificateAuthority.objects.filter(name=CLIENT_CA).first()
    if existing is not None:
        return existing
    certificate, key = new_certificate_authority("Gatehouse client CA")
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        with transaction.atomic():
            ca = CertificateAuthority.objects.create(
                name=CLIENT_CA,
                certificate=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                sealed_private_key=seal(key_der, purpose=_ca_purpose(CLIENT_CA)),
            )
    except IntegrityError:
        return CertificateAuthority.objects.get(name=CLIENT_CA)
    logger.info("client CA created")
    return ca


def client_ca_certificate() -> str:
    """The client CA's certificate (PEM), created on first use. Only that column is read:
    not the sealed key beside it."""
    existing = (
        CertificateAuthority.objects.filter(name=CLIENT_CA)
        .values_list("certificate", flat=True)
        .first()
    )
    return existing if existing is not None else client_ca_ensure().certificate


@cache
def client_ca_signer() -> tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The client CA's PEM, certificate and unsealed key, loaded once per process.

    The CA never changes once made, and issuing bundles is a hot path: no query per bundle.
    """
    ca = client_ca_ensure()
    certificate = x509.load_pem_x509_certificate(ca.certificate.encode("ascii"))
    sealed = bytes(ca.sealed_private_key)
    key = serialization.load_der_private_key(unseal(sealed, purpose=_ca_purpose(ca.name)), None)
    # Made by new_certificate_authority (client_ca_ensure), so always a P-256 key.
    return ca.certificate, certificate, cast(ec.EllipticCurvePrivateKey, key)


def _clean_label(label: str | None) -> str:
    """The label as given, trimmed; too long is an error, never cut. Blank stays blank (the
    console shows the key ID instead)."""
    label = (label or "").strip()
    if len(label) > LABEL_MAX:
        raise ValidationError(
            {"label": [f"Labels have at most {LABEL_MAX} characters (this one has {len(label)})."]}
        )
    return label


def _default_bundle_label() -> str:
    """What a bundle downloaded without a label is called, so downloads tell apart."""
    return f"Generated on {timezone.now():%Y-%m-%d %H:%M:%S} UTC"


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_fields(key: PublicKey) -> dict:
    """What the audit log keeps of a key: its owner and settings, never key material."""
    return {
        "owner": key.user.username,
        "label": key.label,
        "is_signing_key": key.is_signing_key,
        "source": key.source,
        "algorithm": key.algorithm,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
    }


def signing_role_ensure(user: User) -> SigningRole:
    """The user's own delegation role, ``targets/<name>`` (docs/threat-model.md), named now
    if they have none yet; the name stays theirs for good."""
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


def bundle_issue(*, user: User, label: str | None = None, signing: bool = False) -> IssuedBundle:
    """A fresh ECDSA P-256 keypair and certificate, zipped. The private key is never stored.

    The zip is built before the public key is saved, so a failure leaves nothing behind. The
    key and its audit entry are one transaction: one commit to wait for, not one each.
    """
    label = _clean_label(label) or _default_bundle_label()
    ca_pem, ca_certificate, ca_key = client_ca_signer()
    private_key = ec.generate_private_key(ec.SECP256R1())
    certificate = issue_client_certificate(
        username=user.username,
        public_key=private_key.public_key(),
        ca_certificate=ca_certificate,
        ca_key=ca_key,
        validity=dt.timedelta(days=settings.GATEHOUSE_BUNDLE_CERT_DAYS),
    )
    key_id = canonical_key_id(certificate)
    certificate_pem = _pem(certificate)
    role = signing_role_ensure(user).role if signing else None
    site = signing_guide.installation()
    archive = client_bundle_zip(
        username=user.username,
        key_id=key_id,
        ca_pem=ca_pem,
        cert_pem=certificate_pem,
        key_pem=private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        public_pem=private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii"),
        docker_host=settings.GATEHOUSE_DOCKER_HOST,
        notary_url=site.notary_url,
        notary_ca_pem=signing_guide.notary_public_ca(),
        signing_role=role,
        signing_guide=signing_guide.guide_text(
            signing_guide.guide_steps(username=user.username, role=role, site=site)
        )
        if role
        else "",
    )
    # A signing key and the identity change it makes commit together (the receivers run in
    # this transaction).
    with transaction.atomic():
        key = PublicKey.objects.create(
            id=key_id,
            user=user,
            tuf_key_id=certificate_tuf_key(certificate).key_id,
            label=label,
            is_signing_key=signing,
            algorithm="ecdsa-p256",
            certificate=certificate_pem,
            source=PublicKey.Source.ISSUED,
            valid_from=certificate.not_valid_before_utc,
            expires_at=certificate.not_valid_after_utc,
        )
        if signing:
            identity_change_announce(
                actor=user, cause=f"signing key {key.id[:12]} issued", users=[user]
            )
        audit_record(
            action="bundle.issued",
            actor=user,
            target_type="key",
            target_id=key.id,
            after=_key_fields(key),
        )
    logger.info("client bundle issued to %s: key %s", user.username, key.id)
    return IssuedBundle(archive=archive, key=key)


def registration_challenge_issue(*, user: User) -> Challenge:
    """A nonce for ``user`` to sign with the private key of a certificate they register.

    Nothing is stored: the nonce is signed by Gatehouse (``TimestampSigner``, its own salt)
    and names the user, so only they can use it, for ``CHALLENGE_SECONDS``; its use is
    recorded when a registration succeeds, so it serves once.
    """
    value = f"{CHALLENGE_PREFIX}.{user.pk}.{secrets.token_urlsafe(24)}"
    nonce = TimestampSigner(salt=CHALLENGE_SALT).sign(value)
    return Challenge(nonce, timezone.now() + dt.timedelta(seconds=CHALLENGE_SECONDS))


def registration_challenge_valid(*, user: User, nonce: str) -> bool:
    """Whether ``nonce`` is ``user``'s, unexpired and unused (the console keeps showing it)."""
    try:
        _check_challenge(user=user, nonce=nonce)
    except ValidationError:
        return False
    return not UsedChallenge.objects.filter(digest=_nonce_digest(nonce)).exists()


def _nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.strip().encode("utf-8")).hexdigest()


def _check_challenge(*, user: User, nonce: str) -> None:
    """A nonce this Gatehouse gave ``user`` less than ``CHALLENGE_SECONDS`` ago."""
    nonce = (nonce or "").strip()
    if not nonce:
        raise ValidationError({"nonce": ["Ask for a nonce first and sign it with the key."]})
    if len(nonce) > NONCE_MAX or not nonce.isascii():
        raise ValidationError({"nonce": ["This is not a nonce Gatehouse gave."]})
    try:
        value = TimestampSigner(salt=CHALLENGE_SALT).unsign(nonce, max_age=CHALLENGE_SECONDS)
    except SignatureExpired as error:
        raise ValidationError(
            {"nonce": ["The nonce has expired; ask for a new one and sign it."]}
        ) from error
    except BadSignature as error:
        raise ValidationError({"nonce": ["This is not a nonce Gatehouse gave."]}) from error
    prefix, _, rest = value.partition(".")
    owner, _, _ = rest.partition(".")
    if prefix != CHALLENGE_PREFIX or owner != str(user.pk):
        raise ValidationError(
            {"nonce": ["This nonce was given to someone else; ask for your own."]}
        )


def _consume_challenge(nonce: str) -> None:
    """Record the nonce's use, in the caller's transaction: a second use is refused, and a
    registration that fails leaves it usable. Uses past their expiry are forgotten."""
    now = timezone.now()
    UsedChallenge.objects.filter(expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            UsedChallenge.objects.create(
                digest=_nonce_digest(nonce),
                expires_at=now + dt.timedelta(seconds=CHALLENGE_SECONDS),
            )
    except IntegrityError as error:
        raise ValidationError(
            {"nonce": ["This nonce has been used already; ask for a new one and sign it."]}
        ) from error


@transaction.atomic
def public_key_register(
    *,
    actor: User,
    user: User,
    certificate: str,
    nonce: str,
    signature: str,
    label: str | None = None,
    signing: bool = False,
) -> PublicKey:
    """Keep the certificate of a key made elsewhere (UCP's "add existing client bundle"),
    once its holder has proved to have its private key: ``signature`` is the key's signature
    over ``nonce``, from ``registration_challenge_issue(user=actor)``. So nobody registers a
    key that is not theirs (a colleague's, Gatehouse's own token certificate), and nobody
    without the key learns whether it is registered."""
    label = _clean_label(label)
    try:
        checked = check_registered_certificate(certificate)
    except CertificateRejected as error:
        raise ValidationError({"certificate": [str(error)]}) from error
    _check_challenge(user=actor, nonce=nonce)
    try:
        verify_possession(checked.certificate, nonce=nonce.strip(), signature=signature)
    except PossessionNotProven as error:
        raise ValidationError({"signature": [str(error)]}) from error
    key_id = canonical_key_id(checked.certificate)
    if PublicKey.objects.filter(id=key_id).exists():
        raise KeyAlreadyRegistered(f"The key {key_id} is registered already.")
    _consume_challenge(nonce)
    try:
        with transaction.atomic():
            key = PublicKey.objects.create(
                id=key_id,
                user=user,
                tuf_key_id=certificate_tuf_key(checked.certificate).key_id,
                label=label,
                is_signing_key=signing,
                algorithm=checked.algorithm,
                certificate=checked.pem,
                source=PublicKey.Source.REGISTERED,
                valid_from=checked.certificate.not_valid_before_utc,
                expires_at=checked.certificate.not_valid_after_utc,
            )
    except IntegrityError as error:
        raise KeyAlreadyRegistered(f"The key {key_id} is registered already.") from error
    if signing:
        signing_role_ensure(user)
        identity_change_announce(
            actor=actor, cause=f"signing key {key_id[:12]} registered", users=[user]
        )
    audit_record(
        action="key.registered",
        actor=actor,
        target_type="key",
        target_id=key.id,
        after=_key_fields(key),
    )
    logger.info("key %s registered for %s by %s", key.id, user.username, actor)
    return key


@transaction.atomic
def public_key_update(
    *, actor: User, key: PublicKey, label: str | None = None, is_signing_key: bool | None = None
) -> PublicKey:
    before = {"label": key.label, "is_signing_key": key.is_signing_key}
    if label is not None:
        key.label = _clean_label(label)
    if is_signing_key:
        if key.revoked_at is not None:
            raise ValidationError(
                {"is_signing_key": ["A revoked key can never again be a signing key."]}
            )
        if key.expires_at <= timezone.now():
            raise ValidationError({"is_signing_key": ["An expired key cannot be a signing key."]})
    signing_changed = is_signing_key is not None and is_signing_key != key.is_signing_key
    if is_signing_key is not None:
        key.is_signing_key = is_signing_key
    key.save(update_fields=["label", "is_signing_key"])
    if signing_changed:
        if key.is_signing_key:
            signing_role_ensure(key.user)
        identity_change_announce(
            actor=actor, cause=f"key {key.id[:12]} signing changed", users=[key.user]
        )
    audit_record(
        action="key.updated",
        actor=actor,
        target_type="key",
        target_id=key.id,
        before=before,
        after={"label": key.label, "is_signing_key": key.is_signing_key},
    )
    logger.info("key %s of %s updated by %s", key.id, key.user.username, actor)
    return key


@transaction.atomic
def public_key_revoke(*, actor: User, key: PublicKey) -> PublicKey:
    """Revoke for good: the key stays in the history but never signs again."""
    if key.revoked_at is None:
        was_signing = key.is_signing_key
        key.revoked_at = timezone.now()
        key.is_signing_key = False
        key.save(update_fields=["revoked_at", "is_signing_key"])
        if was_signing:
            identity_change_announce(
                actor=actor, cause=f"key {key.id[:12]} revoked", users=[key.user]
            )
        else:  # delegated nowhere, but evaluations explain its signatures as revoked now
            identity_change_announce(actor=actor, cause=f"key {key.id[:12]} revoked")
        audit_record(
            action="key.revoked",
            actor=actor,
            target_type="key",
            target_id=key.id,
            before={"is_signing_key": was_signing, "revoked_at": None},
            after={"is_signing_key": False, "revoked_at": key.revoked_at.isoformat()},
        )
        logger.info("key %s of %s revoked by %s", key.id, key.user.username, actor)
    return key
