"""Open client bundles and make certificates for registration tests."""

import base64
import datetime as dt
import io
import os
import subprocess
import zipfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import NOTARY_CLI_PASSPHRASES


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


KEY_USAGES = {
    "sign": _key_usage(digital_signature=True),
    "encipher": _key_usage(key_encipherment=True),
    "ca": _key_usage(key_cert_sign=True, crl_sign=True),
}


def open_bundle(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def file_modes(archive: bytes) -> dict[str, int]:
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        return {info.filename: (info.external_attr >> 16) & 0o777 for info in bundle.infolist()}


def certificate_pem(
    *,
    key=None,
    common_name: str = "outside",
    days: int = 30,
    starts_days_ago: int = 1,
    is_ca: bool = False,
    key_usage: str | None = None,
) -> str:
    """A self-signed certificate, as a user would bring from another tool. ``key_usage``:
    none (no extension), ``sign`` (digitalSignature), ``encipher`` (keyEncipherment only),
    ``ca`` (keyCertSign and cRLSign only)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=starts_days_ago))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    if is_ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if key_usage is not None:
        builder = builder.add_extension(KEY_USAGES[key_usage], critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def rsa_key(bits: int):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def signed_nonce(key, nonce: str) -> str:
    """What ``printf %s "$NONCE" | openssl dgst -sha256 -sign key.pem | base64 -w0`` prints."""
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(nonce.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(nonce.encode(), ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(raw).decode()


def proof(actor, key) -> dict[str, str]:
    """A nonce given to ``actor`` and ``key``'s signature of it: the proof of possession a
    registration by ``actor`` needs."""
    from bundles.services import registration_challenge_issue

    nonce = registration_challenge_issue(user=actor).nonce
    return {"nonce": nonce, "signature": signed_nonce(key, nonce)}


def registration(actor, *, key=None, **certificate) -> dict[str, str]:
    """A fresh certificate (``certificate_pem`` options) and ``actor``'s proof that they hold
    its key: the ``certificate``, ``nonce`` and ``signature`` of a registration."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    return {"certificate": certificate_pem(key=key, **certificate), **proof(actor, key)}


def unzip_bundle(archive: bytes, into: Path) -> None:
    """Unpack a bundle as ``unzip`` does, modes included (zipfile leaves them out, and the
    CLIs refuse a world-readable ``key.pem``)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        bundle.extractall(into)
        for entry in bundle.infolist():
            (into / entry.filename).chmod(entry.external_attr >> 16 & 0o777)


def run_guide(
    script: str, *, blanks: dict[str, str], bundle: Path, home: Path, password: str
) -> subprocess.CompletedProcess[str]:
    """Run "Sign images" commands in bash where the bundle is unzipped, as its owner would:
    the blanks filled in, their own ``$HOME``, the password typed at the token step's
    prompt. Fails the test if a command fails or the password shows in the output."""
    for blank, value in blanks.items():
        assert blank in script, blank
        script = script.replace(blank, value)
    home.mkdir()
    env = {
        **os.environ,
        **NOTARY_CLI_PASSPHRASES,
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "a-docker-passphrase",
        "HOME": str(home),  # ~/.notary, ~/.docker: the test's own
    }
    env.pop("NOTARY_AUTH", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=bundle,
        input=f"{password}\n",  # what `read -rsp` asks for
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert password not in output
    return result
