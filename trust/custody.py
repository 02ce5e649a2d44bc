"""The private keys Gatehouse holds for Notary, sealed at rest, unsealed only to sign.

Nothing here returns private key material to a caller outside ``trust``; the one way out is
``root_key_export``, encrypted under the admin's passphrase.
"""

import base64
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from gatehouse.keywrap import seal, unseal
from trust.models import CURRENT_ROOT, CustodyKey
from trust.notary.keys import (
    SigningKey,
    generate_ecdsa_key,
    plain_signing_key,
    public_tuf_key,
    root_signing_key,
)


def _purpose(kind: str, key_id: str) -> str:
    return f"trust.{kind}:{key_id}"


TOKEN_CERTIFICATE_NAME = "Gatehouse Notary token signer"  # noqa: S105 - a name
TOKEN_CERTIFICATE_DAYS = 3650


def _new_key(kind: str, state: str = CustodyKey.State.CURRENT) -> CustodyKey:
    private_key = generate_ecdsa_key()
    key_id = public_tuf_key(private_key.public_key()).key_id
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    certificate = b""
    if kind == CustodyKey.Kind.TOKEN:
        certificate = _token_certificate(private_key).public_bytes(serialization.Encoding.PEM)
    current = kind == CustodyKey.Kind.TOKEN and state == CustodyKey.State.CURRENT
    return CustodyKey.objects.create(
        kind=kind,
        state=state,
        key_id=key_id,
        sealed_private_key=seal(der, purpose=_purpose(kind, key_id)),
        certificate=certificate.decode("ascii") if certificate else "",
        activated_at=timezone.now() if current else None,
    )


def _token_certificate(private_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Self-signed: notary-server's ``rootcertbundle`` holds it and the tokens' ``x5c`` names
    it, and a leaf that is the bundle certificate itself verifies (docs/notary-protocol.md,
    "Token authentication")."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_CERTIFICATE_NAME)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=TOKEN_CERTIFICATE_DAYS))
        .sign(private_key, hashes.SHA256())
    )


def _singleton(kind: str) -> CustodyKey:
    """The one root or custodian key, or the current token key, made on first use;
    concurrent first uses agree (a partial unique index allows one current key per kind)."""
    current = CustodyKey.State.CURRENT
    existing = CustodyKey.objects.filter(kind=kind, state=current).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _new_key(kind)
    except IntegrityError:
        return CustodyKey.objects.get(kind=kind, state=current)


ROOT_KEY_MISSING = (
    "Gatehouse has no root key yet: `manage.py root_key` makes it, and so does the first "
    "repository's initialisation."
)


class RootKeyMissing(LookupError):
    """Reading the root key before anything made it: a state to report, not a 500."""

    def __init__(self, message: str = ROOT_KEY_MISSING) -> None:
        super().__init__(message)


def root_key() -> CustodyKey:
    """The root key, made on first use: for the writers that need it to exist (a
    repository's initialisation, ``manage.py root_key``), never for a read."""
    return _singleton(CustodyKey.Kind.ROOT)


def root_key_if_exists() -> CustodyKey | None:
    """The root key, or ``None`` before it is made: reads (a GET) must not make it."""
    return CustodyKey.objects.filter(CURRENT_ROOT).first()


def custodian_key() -> CustodyKey:
    return _singleton(CustodyKey.Kind.CUSTODIAN)


def token_key() -> CustodyKey:
    """The token key that signs new tokens."""
    return _singleton(CustodyKey.Kind.TOKEN)


def token_key_create_staged() -> CustodyKey:
    """A new token key that notary-server can be told to trust before it signs anything."""
    return _new_key(CustodyKey.Kind.TOKEN, CustodyKey.State.STAGED)


@dataclass(frozen=True)
class TokenSigner:
    """Signs Notary bearer tokens with the token key, which it never hands out."""

    key_id: str
    certificate_pem: str
    x5c: str  # standard base64 of the certificate's DER, as the JWT header carries it
    _key: ec.EllipticCurvePrivateKey

    @classmethod
    def for_key(
        cls, private_key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, key_id: str
    ) -> "TokenSigner":
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(
            key_id=key_id,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            x5c=base64.b64encode(der).decode("ascii"),
            _key=private_key,
        )

    def sign(self, data: bytes) -> bytes:
        """ES256 as JWS wants it: raw r‖s, 32 bytes each (not DER)."""
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


_token_signer: TokenSigner | None = None  # the last current key this process signed with


def token_signer() -> TokenSigner:
    """The current token key, ready to sign, unsealed once per process.

    It is on every token's path, so the question "which key is current?" is one indexed
    SELECT of its ID, without the ORM (building the query costs more than running it); the
    whole row is read only when the current key changed, so each process signs with a newly
    activated key from its next token on, and forgets the key it replaces.
    """
    global _token_signer
    table = CustodyKey._meta.db_table
    sql = f"SELECT key_id FROM {table} WHERE kind = %s AND state = %s"  # noqa: S608 - our table
    with connection.cursor() as cursor:
        cursor.execute(sql, [CustodyKey.Kind.TOKEN.value, CustodyKey.State.CURRENT.value])
        row = cursor.fetchone()
    signer = _token_signer
    if signer is None or row is None or signer.key_id != row[0]:
        signer = token_signer_for(token_key())
        _token_signer = signer
    return signer


def token_signer_for(key: CustodyKey) -> TokenSigner:
    """A signer for this token key, unsealed for this use only (not cached): a staged key
    signs one token, to show notary-server before it signs real ones."""
    if key.kind != CustodyKey.Kind.TOKEN:
        raise ValueError(f"{key.kind} key {key.key_id} does not sign tokens")
    return TokenSigner.for_key(
        _load_private_key(key.kind, key.key_id, bytes(key.sealed_private_key)),
        x509.load_pem_x509_certificate(key.certificate.encode("ascii")),
        key.key_id,
    )


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
    return _load_private_key(kind, key_id, sealed)


def _load_private_key(kind: str, key_id: str, sealed: bytes) -> ec.EllipticCurvePrivateKey:
    loaded = serialization.load_der_private_key(
        unseal(sealed, purpose=_purpose(kind, key_id)), None
    )
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{kind} key {key_id} is not an ECDSA key")
    return loaded


def signing_key(key: CustodyKey) -> SigningKey:
    """A targets or custodian key as the plain ``ecdsa`` key object metadata names."""
    return _signing_key(key.kind, key.key_id, bytes(key.sealed_private_key))


@lru_cache(maxsize=1024)
def _signing_key(kind: str, key_id: str, sealed: bytes) -> SigningKey:
    """Built once per process, like ``_unsealed`` and keyed the same way: every sync signs
    with the custodian, and the key object's ID (public key encoding, canonical JSON,
    SHA-256) was computed anew for each job."""
    return plain_signing_key(_unsealed(kind, key_id, sealed))


def root_signing_key_for(gun: str) -> SigningKey:
    """The root key with a certificate for ``gun`` (CN must be the GUN; docs/notary-protocol.md,
    "Key IDs")."""
    return root_signing_key(private_key(root_key()), gun)


def root_key_export(passphrase: str) -> bytes:
    """The root key as encrypted PKCS#8 PEM, for an offline backup; ``RootKeyMissing``
    before it is made, as an export backs the key up and is no way to make it."""
    key = root_key_if_exists()
    if key is None:
        raise RootKeyMissing
    return private_key(key).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
