"""TUF key objects and key IDs (docs/notary-protocol.md, "Key IDs").

A key's TUF ID is the SHA-256 of the canonical JSON of its key object, ``"private": null``
included. For an x509 key the *canonical* ID is the ID the plain key type would get
from the certificate's SubjectPublicKeyInfo: it is what ``notary key list`` prints.
"""

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
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


# --- Private key files (docs/notary-protocol.md, "Key IDs") -------------------------------


class PrivateKeyError(ValueError):
    """A private key PEM that cannot be loaded; see the two subclasses."""


class WrongPassphrase(PrivateKeyError):
    """The key is encrypted and the passphrase is wrong, or none was given."""


class NotAPrivateKey(PrivateKeyError):
    """The data is not an ECDSA private key in a form this package reads."""


_PEM_BLOCK = re.compile(
    r"-----BEGIN (ENCRYPTED PRIVATE KEY|PRIVATE KEY|EC PRIVATE KEY)-----\r?\n"
    r"(.*?)"
    r"-----END \1-----",
    re.DOTALL,
)
_PEM_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: ?.*$")
_MAX_PBKDF2_ITERATIONS = 10_000_000  # a file naming more is not worth minutes of CPU

# DER of the object identifiers PBES2 files use (RFC 8018).
_OID_PBES2 = bytes.fromhex("2a864886f70d01050d")
_OID_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_PBKDF2_PRFS = {
    bytes.fromhex("2a864886f70d0207"): hashes.SHA1,  # the default; what notary writes
    bytes.fromhex("2a864886f70d0208"): hashes.SHA224,
    bytes.fromhex("2a864886f70d0209"): hashes.SHA256,
    bytes.fromhex("2a864886f70d020a"): hashes.SHA384,
    bytes.fromhex("2a864886f70d020b"): hashes.SHA512,
}
_AES_CBC_KEY_SIZES = {
    bytes.fromhex("608648016503040102"): 16,  # aes128-CBC
    bytes.fromhex("608648016503040116"): 24,  # aes192-CBC
    bytes.fromhex("60864801650304012a"): 32,  # aes256-CBC, what notary writes
}
_SEQUENCE, _INTEGER, _OCTET_STRING, _OID = 0x30, 0x02, 0x04, 0x06


def load_private_key_pem(
    pem: str | bytes, passphrase: str | None = None
) -> ec.EllipticCurvePrivateKey:
    """An ECDSA private key from PEM, including the files the ``notary`` CLI writes
    (docs/notary-protocol.md, "Key IDs").

    Reads ``ENCRYPTED PRIVATE KEY`` (PKCS#8 in PBES2: PBKDF2 + AES-CBC), ``PRIVATE KEY``
    (PKCS#8) and ``EC PRIVATE KEY`` (SEC 1, also OpenSSL-encrypted). Headers inside the
    armour, such as the CLI's ``role:`` and ``gun:``, are ignored, and so is the CLI's inner
    PKCS#8 version 1 without a public key, which ``cryptography`` refuses. The first key
    block counts. ``passphrase`` is ignored for a key that is not encrypted.

    Raises ``WrongPassphrase`` (wrong or missing passphrase) or ``NotAPrivateKey`` (no key
    block, damaged data, or a key that is not ECDSA); both are ``ValueError``.
    """
    try:
        text = pem.decode("utf-8") if isinstance(pem, bytes) else pem
    except UnicodeDecodeError as error:
        raise NotAPrivateKey("not PEM text") from error
    block = _PEM_BLOCK.search(text)
    if block is None:
        raise NotAPrivateKey("no PRIVATE KEY block in the PEM")
    label, inside = block.groups()
    lines = [line.strip() for line in inside.splitlines()]
    headers = [line for line in lines if _PEM_HEADER.match(line)]
    body = "".join(line for line in lines if line and line not in headers)
    if label == "EC PRIVATE KEY" and any(h.lower().startswith("proc-type:") for h in headers):
        return _load_openssl_encrypted(block.group(0), passphrase)
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError as error:
        raise NotAPrivateKey(f"the {label} block is not base64") from error
    if label == "ENCRYPTED PRIVATE KEY":
        if passphrase is None:
            raise WrongPassphrase("the key is encrypted and no passphrase was given")
        der = _decrypt_pbes2(der, passphrase.encode("utf-8"))
    if label == "EC PRIVATE KEY":
        return _ecdsa(_load_der(der))
    return _ecdsa(_load_pkcs8(der))


def _ecdsa(key: object) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise NotAPrivateKey(f"a {type(key).__name__}, not an ECDSA private key")
    return key


def _load_der(der: bytes) -> object:
    try:
        return serialization.load_der_private_key(der, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise NotAPrivateKey("the data is not a private key") from error


def _load_pkcs8(der: bytes) -> object:
    """PKCS#8, also as notary writes it: version 1 (v2) and no ``[1]`` public key."""
    try:
        return serialization.load_der_private_key(der, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    try:
        elements = _der_elements(_der_only(der, _SEQUENCE))
    except ValueError as error:
        raise NotAPrivateKey("the data is not a PKCS#8 private key") from error
    if len(elements) < 3 or elements[0][:2] != (_INTEGER, b"\x01"):
        raise NotAPrivateKey("the data is not a PKCS#8 private key")
    # Back to version 0 (v1): drop what only v2 may hold, the [1] public key.
    kept = [_der_encode(_INTEGER, b"\x00")] + [
        raw for tag, _, raw in elements[1:] if tag not in (0xA1, 0x81)
    ]
    return _load_der(_der_encode(_SEQUENCE, b"".join(kept)))


def _load_openssl_encrypted(block: str, passphrase: str | None) -> ec.EllipticCurvePrivateKey:
    """A SEC 1 key with OpenSSL's ``Proc-Type``/``DEK-Info`` encryption: cryptography reads it."""
    if passphrase is None:
        raise WrongPassphrase("the key is encrypted and no passphrase was given")
    try:
        key = serialization.load_pem_private_key(block.encode("ascii"), passphrase.encode())
    except UnsupportedAlgorithm as error:
        raise NotAPrivateKey("the key is encrypted with an unsupported cipher") from error
    except (ValueError, TypeError) as error:
        # A wrong passphrase mostly fails to decrypt, but about once in 256 it decrypts to
        # noise with valid padding, which then only fails to parse: wrong either way, as
        # for PBES2 (``_decrypt_pbes2``).
        raise WrongPassphrase("wrong passphrase for the key") from error
    return _ecdsa(key)


def _decrypt_pbes2(der: bytes, passphrase: bytes) -> bytes:
    """The PKCS#8 inside an EncryptedPrivateKeyInfo with PBES2 (PBKDF2, AES-CBC)."""
    unsupported = NotAPrivateKey("the key is not encrypted with PBES2 (PBKDF2 and AES-CBC)")
    try:
        algorithm, encrypted = _der_elements(_der_only(der, _SEQUENCE))
        scheme, parameters = _der_elements(algorithm[1])
        if scheme[:2] != (_OID, _OID_PBES2) or encrypted[0] != _OCTET_STRING:
            raise unsupported
        kdf, cipher = _der_elements(parameters[1])
        kdf_oid, kdf_parameters = _der_elements(kdf[1])
        cipher_oid, iv = _der_elements(cipher[1])
        salt, iterations, *optional = _der_elements(kdf_parameters[1])
        prf: type[hashes.HashAlgorithm] | None = hashes.SHA1
        for tag, value, _ in optional:  # keyLength INTEGER, then the prf AlgorithmIdentifier
            if tag == _SEQUENCE:
                prf = _PBKDF2_PRFS.get(_der_elements(value)[0][1])
    except NotAPrivateKey:
        raise
    except ValueError as error:
        raise NotAPrivateKey("the data is not an encrypted PKCS#8 key") from error
    key_size = _AES_CBC_KEY_SIZES.get(cipher_oid[1])
    count = int.from_bytes(iterations[1], "big")
    if (
        kdf_oid[:2] != (_OID, _OID_PBKDF2)
        or prf is None
        or key_size is None
        or salt[0] != _OCTET_STRING
        or iterations[0] != _INTEGER
        or not 1 <= count <= _MAX_PBKDF2_ITERATIONS
        or iv[0] != _OCTET_STRING
        or len(iv[1]) != 16
        or not encrypted[1]
        or len(encrypted[1]) % 16
    ):
        raise unsupported
    secret = PBKDF2HMAC(prf(), key_size, salt[1], count).derive(passphrase)
    decryptor = Cipher(algorithms.AES(secret), modes.CBC(iv[1])).decryptor()
    padded = decryptor.update(encrypted[1]) + decryptor.finalize()
    unpadder = block_padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        _der_only(plain, _SEQUENCE)  # a wrong key decrypts to noise, not to one SEQUENCE
    except ValueError as error:
        raise WrongPassphrase("wrong passphrase for the key") from error
    return plain


def _der_only(der: bytes, tag: int) -> bytes:
    """The content of the one element of type ``tag`` that ``der`` holds, nothing after."""
    elements = _der_elements(der)
    if len(elements) != 1 or elements[0][0] != tag:
        raise ValueError("not a single DER element of the expected type")
    return elements[0][1]


def _der_elements(der: bytes) -> list[tuple[int, bytes, bytes]]:
    """The DER elements one after another in ``der``: (tag, content, whole encoding)."""
    elements = []
    position, end = 0, len(der)
    while position < end:
        if position + 2 > end:
            raise ValueError("truncated DER")
        tag, length = der[position], der[position + 1]
        content = position + 2
        if length & 0x80:
            size = length & 0x7F
            if not 1 <= size <= 4 or content + size > end:
                raise ValueError("bad DER length")
            length = int.from_bytes(der[content : content + size], "big")
            content += size
        if content + length > end:
            raise ValueError("truncated DER")
        elements.append((tag, der[content : content + length], der[position : content + length]))
        position = content + length
    return elements


def _der_encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content
