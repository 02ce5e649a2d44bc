"""Gatehouse's root key: made once, exported only encrypted, every export recorded."""

import logging

from django.core.exceptions import ValidationError

from accounts.models import User
from audit.services import audit_record
from trust import custody
from trust.models import RootKeyExport

logger = logging.getLogger(__name__)

ROOT_EXPORT_MIN_PASSPHRASE = 12
ROOT_EXPORT_MAX_PASSPHRASE_BYTES = 1023  # OpenSSL's PKCS#8 encryption takes no more


def root_key_ensure() -> tuple[str, bool]:
    """Gatehouse's root key's canonical ID, and whether it was made now: for ``manage.py
    root_key`` and set-up, never for a read. The first repository's initialisation makes it
    too, through custody."""
    existing = custody.root_key_if_exists()
    if existing is not None:
        return existing.key_id, False
    key = custody.root_key()
    audit_record(
        action="root_key.created", actor=None, target_type="root_key", target_id=key.key_id
    )
    logger.info("root key %s created", key.key_id)
    return key.key_id, True


def root_key_export(*, actor: User, passphrase: str) -> bytes:
    """The root key, encrypted under ``passphrase``; every export is recorded."""
    if len(passphrase) < ROOT_EXPORT_MIN_PASSPHRASE:
        raise ValidationError(
            {"passphrase": [f"Use at least {ROOT_EXPORT_MIN_PASSPHRASE} characters."]}
        )
    if len(passphrase.encode("utf-8")) > ROOT_EXPORT_MAX_PASSPHRASE_BYTES:
        raise ValidationError(
            {"passphrase": [f"Use at most {ROOT_EXPORT_MAX_PASSPHRASE_BYTES} bytes (UTF-8)."]}
        )
    pem = custody.root_key_export(passphrase)
    exported = custody.root_key_if_exists()
    RootKeyExport.objects.create(actor=actor)
    audit_record(
        action="root_key.exported",
        actor=actor,
        target_type="root_key",
        target_id=exported.key_id if exported is not None else "",
    )
    logger.info("root key exported by %s", actor)
    return pem
