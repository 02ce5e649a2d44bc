"""X.509 for client bundles: the client CA, client certificates, and checks on certificates
that users register. Pure functions over ``cryptography`` objects; no database.
"""

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
CLOCK_SKEW = dt.timedelta(minutes=5)
ACCEPTED_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}
MIN_RSA_BITS = 2048


class CertificateRejected(ValueError):
    """A registered certificate Gatehouse will not accept; the message says why."""


def _name(common_name: str, *, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse")]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def new_certificate_authority(
    common_name: str,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issue_client_certificate(
    *,
    username: str,
    public_key: ec.EllipticCurvePublicKey,
    ca_certificate: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    validity: dt.timedelta,
) -> x509.Certificate:
    """``CN=<username>, OU=Client, O=Gatehouse``, for client authentication, as UCP issued."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(username, unit="Client"))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class CheckedCertificate:
    certificate: x509.Certificate
    algorithm: str

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def check_registered_certificate(pem: str, *, now: dt.datetime | None = None) -> CheckedCertificate:
    """Accept one leaf certificate with an ECDSA P-256/P-384 or RSA >= 2048-bit key, in date."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode("utf-8") + b"\n")
    except (ValueError, UnicodeEncodeError) as error:
        raise CertificateRejected("This is not a PEM-encoded X.509 certificate.") from error
    now = now or dt.datetime.now(dt.UTC)
    if certificate.not_valid_after_utc <= now:
        raise CertificateRejected(
            f"The certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC."
        )
    if certificate.not_valid_before_utc > now + CLOCK_SKEW:
        raise CertificateRejected("The certificate is not valid yet.")
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise CertificateRejected("The certificate is a CA certificate; register a leaf.")
    public_key = certificate.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        algorithm = ACCEPTED_CURVES.get(public_key.curve.name)
        if algorithm is None:
            raise CertificateRejected(
                f"The curve {public_key.curve.name} is not accepted; use P-256 or P-384."
            )
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise CertificateRejected(
                f"The RSA key has {public_key.key_size} bits; at least {MIN_RSA_BITS} are needed."
            )
        algorithm = f"rsa-{public_key.key_size}"
    else:
        raise CertificateRejected("Only ECDSA (P-256, P-384) and RSA keys are accepted.")
    return CheckedCertificate(certificate, algorithm)
