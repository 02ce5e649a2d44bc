import base64
import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from gatehouse.keywrap import UnsealError, seal, unseal


def new_kek() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def test_sealed_keys_open_only_for_their_purpose_and_untouched():
    sealed = seal(b"private key bytes", purpose="trust.root")
    assert b"private key bytes" not in sealed
    assert unseal(sealed, purpose="trust.root") == b"private key bytes"
    with pytest.raises(UnsealError, match="another use"):
        unseal(sealed, purpose="bundles.ca:client")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(UnsealError, match="altered"):
        unseal(tampered, purpose="trust.root")
    with pytest.raises(UnsealError, match="not a sealed key"):
        unseal(b"-----BEGIN PRIVATE KEY-----", purpose="trust.root")


def test_a_rotated_kek_list_still_opens_old_blobs(settings):
    old, new = new_kek(), new_kek()
    settings.GATEHOUSE_KEY_ENCRYPTION_KEYS = [old]
    sealed_under_old = seal(b"secret", purpose="p")
    settings.GATEHOUSE_KEY_ENCRYPTION_KEYS = [new, old]
    assert unseal(sealed_under_old, purpose="p") == b"secret"
    sealed_under_new = seal(b"secret", purpose="p")
    settings.GATEHOUSE_KEY_ENCRYPTION_KEYS = [new]
    assert unseal(sealed_under_new, purpose="p") == b"secret"
    with pytest.raises(UnsealError, match="not configured"):
        unseal(sealed_under_old, purpose="p")


@pytest.mark.parametrize("kek", ["too-short", "!!!not base64!!!"])
def test_a_malformed_kek_is_a_configuration_error(settings, kek):
    settings.GATEHOUSE_KEY_ENCRYPTION_KEYS = [kek]
    with pytest.raises(ImproperlyConfigured, match="GATEHOUSE_KEY_ENCRYPTION_KEY"):
        seal(b"x", purpose="p")
