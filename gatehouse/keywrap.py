"""Private keys at rest: sealed with AES-256-GCM under the key-encryption key (KEK).

A sealed blob is ``b"GH1" | KEK id (8 bytes) | nonce (12) | ciphertext+tag``. The KEK id lets
a rotated KEK list (``GATEHOUSE_KEY_ENCRYPTION_KEY=new,old``) still open old blobs, and the
``purpose`` is bound as associated data, so a blob sealed for one use cannot be passed off as
another.
"""

import base64
import binascii
import hashlib
import os
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAGIC = b"GH1"
KEK_ID_LENGTH = 8
NONCE_LENGTH = 12


class UnsealError(Exception):
    """The blob was sealed under an unknown KEK, for another purpose, or was altered."""


def _decode_kek(encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as error:
        raise ImproperlyConfigured("GATEHOUSE_KEY_ENCRYPTION_KEY is not base64.") from error
    if len(key) != 32:
        raise ImproperlyConfigured(
            "GATEHOUSE_KEY_ENCRYPTION_KEY must be 32 bytes in URL-safe base64 "
            f"(got {len(key)} bytes)."
        )
    return key


@cache
def _keks(configured: tuple[str, ...]) -> dict[bytes, AESGCM]:
    """KEK id -> cipher, in configured order (the first one seals)."""
    keks = {}
    for encoded in configured:
        key = _decode_kek(encoded)
        keks[hashlib.sha256(key).digest()[:KEK_ID_LENGTH]] = AESGCM(key)
    return keks


def _configured() -> dict[bytes, AESGCM]:
    return _keks(tuple(settings.GATEHOUSE_KEY_ENCRYPTION_KEYS))


def seal(plaintext: bytes, *, purpose: str) -> bytes:
    kek_id, cipher = next(iter(_configured().items()))
    nonce = os.urandom(NONCE_LENGTH)
    return MAGIC + kek_id + nonce + cipher.encrypt(nonce, plaintext, purpose.encode())


def unseal(blob: bytes, *, purpose: str) -> bytes:
    blob = bytes(blob)
    if not blob.startswith(MAGIC):
        raise UnsealError("not a sealed key")
    kek_id = blob[len(MAGIC) : len(MAGIC) + KEK_ID_LENGTH]
    cipher = _configured().get(kek_id)
    if cipher is None:
        raise UnsealError("sealed under a key-encryption key that is not configured")
    nonce_start = len(MAGIC) + KEK_ID_LENGTH
    nonce = blob[nonce_start : nonce_start + NONCE_LENGTH]
    try:
        return cipher.decrypt(nonce, blob[nonce_start + NONCE_LENGTH :], purpose.encode())
    except InvalidTag as error:
        raise UnsealError(
            f"the sealed key for {purpose} was altered or is for another use"
        ) from error
