"""Open client bundles and make certificates for registration tests."""

import datetime as dt
import io
import zipfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


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
) -> str:
    """A self-signed certificate, as a user would bring from another tool."""
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
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def rsa_key(bits: int):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
