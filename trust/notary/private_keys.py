"""Private key files: ECDSA keys from PEM, as the ``notary`` CLI and OpenSSL write them
(docs/notary-protocol.md, "Key IDs").

``load_private_key_pem`` is the one entry. The CLI's encrypted files are PKCS#8 in PBES2
(PBKDF2 and AES-CBC) with headers inside the armour and a PKCS#8 version ``cryptography``
refuses, so this module reads their DER itself. Kept apart from ``keys.py`` (key objects,
IDs, signatures and signing keys), which never parses a key file.
"""

import base64
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC


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
