"""Canonical bytes and key IDs against vectors verified with the real CLI
(docs/notary-protocol.md, "Key IDs")."""

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from trust.notary.canonical import canonical_json
from trust.notary.keys import (
    NotAPrivateKey,
    TufKey,
    WrongPassphrase,
    canonical_key_id,
    certificate_tuf_key,
    generate_ecdsa_key,
    load_private_key_pem,
    public_tuf_key,
)

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


# --- private key files (docs/notary-protocol.md, "Key IDs") ------------------------------

# Written by the real CLI: `notary key generate ecdsa --role root`, passphrase "pw". Inside:
# PBES2 (PBKDF2-HMAC-SHA1, 2048 rounds, AES-256-CBC) around a PKCS#8 with version 1 and no
# public key, which cryptography's own loader refuses.
CLI_ROOT_KEY = """\
-----BEGIN ENCRYPTED PRIVATE KEY-----
role: root

MIHuMEkGCSqGSIb3DQEFDTA8MBsGCSqGSIb3DQEFDDAOBAh5IaiMIqojqAICCAAw
HQYJYIZIAWUDBAEqBBAJzFloEA6YY6sYLGGdDCwjBIGgsjQ0ailGb/8M3iLKiass
7tFt/5Ldt/Fbr+PN75mZI9KkMm1cRDS1rH2qmX0GpVDihzq+v9YV/vJ3gngw1BU9
CZziqMLshrXcsCfIgun13ptRTEZyhRO5RkyojinLtnzPgdE8tww4moglqYPF71CY
u3ibVKWUS8hTGTbpxzOa+H1tPHNbsjcr+Vpn78REcIh2Ejejy6KLy3wABCiRY2w8
jw==
-----END ENCRYPTED PRIVATE KEY-----
"""
CLI_ROOT_KEY_ID = "03215fb71156493b417623d54f17303d990cd83f2a82fb11cf455f10d59dec84"


def _pem(key: ec.EllipticCurvePrivateKey, form, encryption=None) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, form, encryption or serialization.NoEncryption()
    ).decode()


def _with_headers(pem: str, *headers: str) -> str:
    first, rest = pem.split("\n", 1)
    return "\n".join([first, *headers, "", rest])


def test_a_key_the_cli_wrote_loads_with_its_passphrase():
    with pytest.raises(ValueError, match=r"Could not deserialize|Invalid"):  # cryptography's own
        serialization.load_pem_private_key(CLI_ROOT_KEY.encode(), b"pw")

    key = load_private_key_pem(CLI_ROOT_KEY, "pw")

    assert public_tuf_key(key.public_key()).key_id == CLI_ROOT_KEY_ID
    assert load_private_key_pem(CLI_ROOT_KEY.encode(), "pw").private_numbers() == (
        key.private_numbers()
    )


@pytest.mark.parametrize("passphrase", ["wrong", "", None])
def test_a_wrong_or_missing_passphrase_says_so(passphrase):
    with pytest.raises(WrongPassphrase):
        load_private_key_pem(CLI_ROOT_KEY, passphrase)


@pytest.mark.parametrize("headers", [(), ("role: targets", "gun: example.com/app")])
def test_encrypted_pkcs8_from_cryptography_loads_with_or_without_headers(headers):
    key = generate_ecdsa_key()
    pem = _pem(
        key,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret passphrase"),
    )
    assert "ENCRYPTED PRIVATE KEY" in pem

    loaded = load_private_key_pem(_with_headers(pem, *headers), "s3cret passphrase")

    assert loaded.private_numbers() == key.private_numbers()
    with pytest.raises(WrongPassphrase):
        load_private_key_pem(_with_headers(pem, *headers), "s3cret passphrasE")


@pytest.mark.parametrize(
    "form", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_plain_keys_load_and_ignore_a_passphrase(form):
    key = generate_ecdsa_key()
    pem = _with_headers(_pem(key, form), "role: targets/releases", "gun: example.com/app")

    assert load_private_key_pem(pem, None).private_numbers() == key.private_numbers()
    assert load_private_key_pem(pem, "unused").private_numbers() == key.private_numbers()


def test_an_openssl_encrypted_ec_key_loads_and_tells_a_wrong_passphrase():
    key = generate_ecdsa_key()
    pem = _pem(
        key,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert "Proc-Type: 4,ENCRYPTED" in pem

    assert load_private_key_pem(pem, "pw").private_numbers() == key.private_numbers()
    with pytest.raises(WrongPassphrase):
        load_private_key_pem(pem, "nope")
    with pytest.raises(WrongPassphrase):
        load_private_key_pem(pem, None)


def _certificate_pem() -> str:
    private_key = generate_ecdsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pem(key, serialization.PrivateFormat.PKCS8)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("", id="empty"),
        pytest.param("not a key at all", id="text"),
        pytest.param(b"\xff\xfe\x00binary", id="binary"),
        pytest.param(_certificate_pem(), id="certificate"),
        pytest.param(_rsa_pem(), id="rsa"),
        pytest.param(
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", id="not-base64"
        ),
        pytest.param(
            "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n", id="not-a-key"
        ),
        pytest.param(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQA=\n"
            "-----END ENCRYPTED PRIVATE KEY-----\n",
            id="not-encrypted-pkcs8",
        ),
        pytest.param(CLI_ROOT_KEY.replace("MIHuMEkG", "MIHuMEkH"), id="damaged"),
    ],
)
def test_data_that_is_not_an_ecdsa_private_key_says_so(data):
    with pytest.raises(NotAPrivateKey):
        load_private_key_pem(data, "pw")


def test_the_two_failures_are_distinct_value_errors():
    assert issubclass(WrongPassphrase, ValueError)
    assert issubclass(NotAPrivateKey, ValueError)
    assert not issubclass(WrongPassphrase, NotAPrivateKey)
    assert not issubclass(NotAPrivateKey, WrongPassphrase)


def test_a_wrong_passphrase_that_decrypts_to_noise_is_still_a_wrong_passphrase():
    """About once in 256 a wrong passphrase gets past OpenSSL's padding check; try enough
    wrong ones that this happens, and every one must still say so."""
    pem = _pem(
        generate_ecdsa_key(),
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    for attempt in range(1500):
        with pytest.raises(WrongPassphrase):
            load_private_key_pem(pem, f"wrong-{attempt}")
