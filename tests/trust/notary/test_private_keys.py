"""Private key files (``trust.notary.private_keys``): what the ``notary`` CLI and OpenSSL
write, and how a file that cannot be read says why (docs/notary-protocol.md, "Key IDs")."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from trust.notary.keys import generate_ecdsa_key, public_tuf_key
from trust.notary.private_keys import NotAPrivateKey, WrongPassphrase, load_private_key_pem

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
