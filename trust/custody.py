"""The private keys Gatehouse holds for Notary, sealed at rest, unsealed only to sign.

Nothing here returns private key material to a caller outside ``trust``; the one way out is
``root_key_export``, encrypted under the admin's passphrase.
"""

from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import IntegrityError, transaction

from gatehouse.keywrap import seal, unseal
from trust.models import CustodyKey
from trust.notary.keys import (
    SigningKey,
    generate_ecdsa_key,
    plain_signing_key,
    public_tuf_key,
    root_signing_key,
)


def _purpose(kind: str, key_id: str) -> str:
    return f"trust.{kind}:{key_id}"


def _new_key(kind: str) -> CustodyKey:
    private_key = generate_ecdsa_key()
    key_id = public_tuf_key(private_key.public_key()).key_id
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return CustodyKey.objects.create(
        kind=kind, key_id=key_id, sealed_private_key=seal(der, purpose=_purpose(kind, key_id))
    )


def _singleton(kind: str) -> CustodyKey:
    """The one root or custodian key, made on first use; concurrent first uses agree."""
    existing = CustodyKey.objects.filter(kind=kind).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _new_key(kind)
    except IntegrityError:
        return CustodyKey.objects.get(kind=kind)


def root_key() -> CustodyKey:
    return _singleton(CustodyKey.Kind.ROOT)


def custodian_key() -> CustodyKey:
    return _singleton(CustodyKey.Kind.CUSTODIAN)


def targets_key_create() -> CustodyKey:
    return _new_key(CustodyKey.Kind.TARGETS)


def targets_key_store(private_key: ec.EllipticCurvePrivateKey) -> CustodyKey:
    """Keep a targets key made elsewhere (adoption), sealed like our own."""
    key_id = public_tuf_key(private_key.public_key()).key_id
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return CustodyKey.objects.create(
        kind=CustodyKey.Kind.TARGETS,
        key_id=key_id,
        sealed_private_key=seal(der, purpose=_purpose(CustodyKey.Kind.TARGETS, key_id)),
    )


def private_key(key: CustodyKey) -> ec.EllipticCurvePrivateKey:
    return _unsealed(key.kind, key.key_id, bytes(key.sealed_private_key))


@lru_cache(maxsize=1024)
def _unsealed(kind: str, key_id: str, sealed: bytes) -> ec.EllipticCurvePrivateKey:
    """Unsealed once per process: every job signs, and unsealing costs more than signing."""
    loaded = serialization.load_der_private_key(
        unseal(sealed, purpose=_purpose(kind, key_id)), None
    )
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{kind} key {key_id} is not an ECDSA key")
    return loaded


def signing_key(key: CustodyKey) -> SigningKey:
    """A targets or custodian key as the plain ``ecdsa`` key object metadata names."""
    return plain_signing_key(private_key(key))


def root_signing_key_for(gun: str) -> SigningKey:
    """The root key with a certificate for ``gun`` (CN must be the GUN, notary-wire §4.4)."""
    return root_signing_key(private_key(root_key()), gun)


def root_key_export(passphrase: str) -> bytes:
    """The root key as encrypted PKCS#8 PEM, for an offline backup."""
    return private_key(root_key()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
