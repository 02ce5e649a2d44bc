"""TUF key objects and key IDs (§4).

A key's TUF ID is the SHA-256 of the canonical JSON of its key object, ``"private": null``
included (§4.1). For an x509 key the *canonical* ID is the ID the plain key type would get
from the certificate's SubjectPublicKeyInfo: it is what ``notary key list`` prints (§4.3).
"""

import base64
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trust.notary.canonical import canonical_json

PublicKeyTypes = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class TufKey:
    """A key as TUF metadata holds it: a type and its public value (§4.2)."""

    keytype: str
    public: str

    def to_json(self) -> dict:
        return {"keytype": self.keytype, "keyval": {"private": None, "public": self.public}}

    @property
    def key_id(self) -> str:
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()


def _spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _plain_keytype(public_key: PublicKeyTypes) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecdsa"
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise ValueError(f"unsupported key type {type(public_key).__name__}")


def public_tuf_key(public_key: PublicKeyTypes) -> TufKey:
    """The plain key object: DER SPKI for ecdsa and rsa, the raw 32 bytes for ed25519."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return TufKey("ed25519", base64.b64encode(raw).decode("ascii"))
    keytype = _plain_keytype(public_key)
    return TufKey(keytype, base64.b64encode(_spki_der(public_key)).decode("ascii"))


def certificate_tuf_key(certificate: x509.Certificate) -> TufKey:
    """The x509 key object: the PEM text of the certificate, trailing newline included."""
    keytype = _plain_keytype(certificate.public_key()) + "-x509"
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return TufKey(keytype, base64.b64encode(pem.encode("ascii")).decode("ascii"))


def canonical_key_id(certificate: x509.Certificate) -> str:
    """The ID the ``notary`` CLI shows for a certificate's key (§4.3)."""
    return public_tuf_key(certificate.public_key()).key_id
