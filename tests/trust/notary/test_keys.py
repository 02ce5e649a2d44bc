"""Canonical bytes and key IDs against vectors verified with the real CLI
(docs/notary-protocol.md, "Key IDs")."""

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trust.notary.canonical import canonical_json
from trust.notary.keys import TufKey, canonical_key_id, certificate_tuf_key, public_tuf_key

GENERIC_INPUT = {
    "version": 3,
    "_type": "Targets",
    "b": [True, None, {"z": 0, "a": -5}],
    "a": 'q"uote\\back<lt>&amp é☃',
    "expires": "2030-01-01T00:00:00Z",
}
GENERIC_HEX = (
    "7b225f74797065223a2254617267657473222c2261223a22715c22756f74655c5c6261636b3c6c743e26616d70"
    "20c3a9e29883222c2262223a5b747275652c6e756c6c2c7b2261223a2d352c227a223a307d5d2c22657870697265"
    "73223a22323033302d30312d30315430303a30303a30305a222c2276657273696f6e223a337d"
)
ECDSA_SPKI = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmal6z7VZZMe9DS8nKxekoE5UsGJhd3zhxWa+S7bL5Eue6rw4OL5Ntw"
    "NktI2x/11uAFwUCjeU6VjoAdOGF7/UMQ=="
)


def test_canonical_bytes_match_go_byte_for_byte():
    assert canonical_json(GENERIC_INPUT).hex() == GENERIC_HEX


def test_canonical_json_refuses_floats():
    with pytest.raises(ValueError, match="non-integer"):
        canonical_json({"length": 1.5})


def test_key_ids_of_the_real_server_keys():
    ed25519 = TufKey("ed25519", "BKdzC7LldYTn96tuu2EXoE0A/bU59seSHl64Zsa3tj4=")
    assert ed25519.key_id == "6ab31b60be3ae9b0cd3a68a7814728c62ebc791ea3d96f90966d9ef0d9816e55"
    assert (
        TufKey("ecdsa", ECDSA_SPKI).key_id
        == "8905d5c6c45ddc1c43beb016d54d1e1383e2f7eec1826390b5ac1cd95e1ce3eb"
    )


def test_public_tuf_key_is_the_der_spki():
    spki = base64.b64decode(ECDSA_SPKI)
    key = serialization.load_der_public_key(spki)
    assert public_tuf_key(key) == TufKey("ecdsa", ECDSA_SPKI)


def test_certificate_key_ids_differ_but_the_canonical_one_is_the_plain_key_id():
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jenkins")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    x509_key = certificate_tuf_key(certificate)
    assert x509_key.keytype == "ecdsa-x509"
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    assert base64.b64decode(x509_key.public) == pem
    assert pem.endswith(b"-----END CERTIFICATE-----\n")
    assert canonical_key_id(certificate) == public_tuf_key(private_key.public_key()).key_id
    assert canonical_key_id(certificate) != x509_key.key_id


@pytest.mark.parametrize(
    "document",
    [{"a": [1, {"b": 2.0}]}, [{"x": (1, 0.5)}], {"deep": [[[[{"n": float("nan")}]]]]}],
)
def test_canonical_json_refuses_floats_anywhere_in_the_document(document):
    with pytest.raises(ValueError, match="non-integer"):
        canonical_json(document)


def test_a_key_id_is_computed_once_per_key_object():
    key = TufKey("ecdsa", ECDSA_SPKI)
    first = key.key_id

    assert key.__dict__["key_id"] == first
    assert key.key_id is first
    assert key == TufKey("ecdsa", ECDSA_SPKI)
    assert hash(key) == hash(TufKey("ecdsa", ECDSA_SPKI))
    assert repr(key) == f"TufKey(keytype='ecdsa', public='{ECDSA_SPKI}')"
