"""TUF key objects and key IDs (docs/notary-protocol.md, "Key IDs").

A key's TUF ID is the SHA-256 of the canonical JSON of its key object, ``"private": null``
included. For an x509 key the *canonical* ID is the ID the plain key type would get
from the certificate's SubjectPublicKeyInfo: it is what ``notary key list`` prints.

Also the signatures made and checked with those keys, and root certificates. Reading
private key files is ``private_keys.py``'s.
"""

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trust.notary.canonical import canonical_json

PublicKeyTypes = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class TufKey:
    """A key as TUF metadata holds it: a type and its public value (docs/notary-protocol.md,
    "Key IDs")."""

    keytype: str
    public: str

    def to_json(self) -> dict[str, Any]:
        return {"keytype": self.keytype, "keyval": {"private": None, "public": self.public}}

    @cached_property
    def key_id(self) -> str:
        """Computed once per object (it is frozen): an init asks for each ID many times."""
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()


def _spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _tuf_public_key(public_key: CertificatePublicKeyTypes) -> PublicKeyTypes:
    """A certificate's key, if it is of a type TUF names (``ValueError`` otherwise)."""
    if isinstance(
        public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    ):
        return public_key
    raise ValueError(f"unsupported key type {type(public_key).__name__}")


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
    keytype = _plain_keytype(_tuf_public_key(certificate.public_key())) + "-x509"
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return TufKey(keytype, base64.b64encode(pem.encode("ascii")).decode("ascii"))


def canonical_key_id(certificate: x509.Certificate) -> str:
    """The ID the ``notary`` CLI shows for a certificate's key (docs/notary-protocol.md,
    "Key IDs")."""
    return public_tuf_key(_tuf_public_key(certificate.public_key())).key_id


@lru_cache(maxsize=4096)
def tuf_key_canonical_id(key: TufKey) -> str:
    """The ID ``notary key list`` shows for a key object: for a certificate, its public
    key's; a plain key is its own. Unreadable certificates keep their TUF ID."""
    if not key.keytype.endswith("-x509"):
        return key.key_id
    try:
        certificate = x509.load_pem_x509_certificate(base64.b64decode(key.public, validate=True))
    except ValueError:
        return key.key_id
    return canonical_key_id(certificate)


# --- Signatures (docs/notary-protocol.md, "Signatures") -----------------------------------

ECDSA_HASH = hashes.SHA256()  # ECDSA signs SHA-256 of the message, even on P-384
PSS_PADDING = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class SignatureError(ValueError):
    """A signature that does not verify, or a key or method Notary would not accept."""


def load_public_key(key: TufKey) -> PublicKeyTypes:
    """The ``cryptography`` key behind a TUF key object, whatever its type
    (docs/notary-protocol.md, "Key IDs")."""
    try:
        raw = base64.b64decode(key.public, validate=True)
    except ValueError as error:
        raise SignatureError(f"key {key.key_id}: public value is not base64") from error
    try:
        if key.keytype == "ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        if key.keytype in {"ecdsa", "rsa"}:
            loaded = serialization.load_der_public_key(raw)
        elif key.keytype in {"ecdsa-x509", "rsa-x509"}:
            loaded = x509.load_pem_x509_certificate(raw).public_key()
        else:
            raise SignatureError(f"key {key.key_id}: unsupported key type {key.keytype}")
    except (ValueError, TypeError) as error:
        raise SignatureError(f"key {key.key_id}: cannot load {key.keytype} key") from error
    if not isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise SignatureError(f"key {key.key_id}: {key.keytype} holds an unexpected key")
    return loaded


def verify_signature(key: TufKey, method: str, signature: bytes, message: bytes) -> None:
    """Raise ``SignatureError`` unless ``signature`` by ``key`` over ``message`` verifies."""
    public_key = load_public_key(key)
    method = method.lower()
    try:
        if method == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise SignatureError(f"ecdsa signature of {len(signature)} bytes, not {2 * size}")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(ECDSA_HASH))
        elif method == "eddsa" and isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        elif method == "rsapss" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, PSS_PADDING, hashes.SHA256())
        elif method == "rsapkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SignatureError(f"method {method} does not fit a {key.keytype} key")
    except InvalidSignature as error:
        raise SignatureError(f"bad {method} signature by key {key.key_id}") from error


@dataclass(frozen=True)
class SigningKey:
    """A private ECDSA key and the TUF key object that names it in metadata.

    For root the key object is the certificate (``ecdsa-x509``; docs/notary-protocol.md,
    "Key IDs"); for other roles it may be the plain key or a certificate. Either way
    ``key_id`` is what signatures carry.
    """

    private_key: ec.EllipticCurvePrivateKey
    public: TufKey

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> dict[str, str]:
        """A signature object: raw r‖s, padded to the curve size, in padded base64
        (docs/notary-protocol.md, "Signatures")."""
        r, s = decode_dss_signature(self.private_key.sign(message, ec.ECDSA(ECDSA_HASH)))
        size = (self.private_key.curve.key_size + 7) // 8
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return {"keyid": self.key_id, "method": "ecdsa", "sig": base64.b64encode(raw).decode()}


def generate_ecdsa_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def plain_signing_key(private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
    return SigningKey(private_key, public_tuf_key(private_key.public_key()))


def root_certificate(
    private_key: ec.EllipticCurvePrivateKey,
    gun: str,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = dt.timedelta(days=3650),
) -> x509.Certificate:
    """A root certificate as the CLI makes one: self-signed, CN = GUN, not a CA
    (docs/notary-protocol.md, "Key IDs")."""
    now = now or dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gun)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )


def root_signing_key(private_key: ec.EllipticCurvePrivateKey, gun: str) -> SigningKey:
    """One root key serves many repositories: each GUN gets its own certificate of it."""
    return SigningKey(private_key, certificate_tuf_key(root_certificate(private_key, gun)))
