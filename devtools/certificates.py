"""TLS for the test servers that listen on loopback (slapd, the OpenID provider): a CA of
their own and a server certificate it signed, for ``localhost`` and ``127.0.0.1``.

No Django here: tests and benchmarks start those servers before (and without) the
project's settings.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from devtools.notary import _certificate_builder, _key_usage, _name, _write, _write_key

FILES = ("ca.crt", "server.crt", "server.key")


def loopback_certificates(directory: Path, *, ca_name: str, server_name: str) -> None:
    """Write ``ca.crt``, ``server.crt`` and ``server.key`` into ``directory`` (made private
    if missing); kept as they are when all three exist, so a restart serves the same."""
    if all((directory / name).exists() for name in FILES):
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    issuer = _name(ca_name)
    ca = (
        _certificate_builder(issuer, issuer, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = (
        _certificate_builder(_name(server_name), issuer, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "server.key", key)
    _write(directory / "server.crt", server.public_bytes(serialization.Encoding.PEM))
