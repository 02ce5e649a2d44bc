"""X.509 for client bundles: the client CA, client certificates, and checks on certificates
that users register. Pure functions over ``cryptography`` objects; no database.
"""

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
CLOCK_SKEW = dt.timedelta(minutes=5)
ACCEPTED_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}
MIN_RSA_BITS = 2048


# Any PEM private key: PKCS#8 (plain or encrypted), SEC1 ("EC"), PKCS#1 ("RSA"), OpenSSH.
_PRIVATE_KEY_PEM = re.compile(r"BEGIN[A-Z0-9 ]*PRIVATE KEY", re.IGNORECASE)
PRIVATE_KEY_PASTED = (
    "This is a private key; paste the certificate (e.g. cert.pem), never the private key. "
    "Nothing of it was kept."
)
# The largest signature of an accepted key (RSA 16384 bits), base64 with some slack.
SIGNATURE_MAX = 4096


class CertificateRejected(ValueError):
    """A registered certificate Gatehouse will not accept; the message says why."""


class PossessionNotProven(ValueError):
    """A signature over a registration nonce that the certificate's key did not make."""


def holds_private_key(text: str) -> bool:
    """Whether pasted text holds a PEM private key (alone or next to a certificate)."""
    return bool(_PRIVATE_KEY_PEM.search(text))


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
    """Accept one leaf certificate with an ECDSA P-256/P-384 or RSA >= 2048-bit key, in date,
    that may sign: not a CA, and a key usage (when it has one) naming digitalSignature.

    Text that holds a private key is refused before anything else reads it, with a message
    that never repeats it.
    """
    if holds_private_key(pem):
        raise CertificateRejected(PRIVATE_KEY_PASTED)
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
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise CertificateRejected(
            "The certificate's key usage does not include digitalSignature, so its key may "
            "not sign; register a certificate for signing."
        )
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


def verify_possession(certificate: x509.Certificate, *, nonce: str, signature: str) -> None:
    """Check that the certificate's key signed ``nonce``: a base64 DER signature over its
    ASCII bytes with SHA-256, as ``printf %s "$NONCE" | openssl dgst -sha256 -sign key.pem
    | base64 -w0`` makes it (ECDSA; RSA PKCS#1 v1.5, or PSS). Whitespace in the base64 is
    ignored, and a nonce signed with the newline ``echo`` adds is accepted too.
    """
    compact = "".join(signature.split())
    if not compact:
        raise PossessionNotProven("Give the signature of the nonce, made with the private key.")
    if len(compact) > SIGNATURE_MAX:
        raise PossessionNotProven("This is too long to be a signature.")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as error:
        raise PossessionNotProven("The signature is not base64.") from error
    public_key = certificate.public_key()
    for message in (nonce.encode("ascii"), nonce.encode("ascii") + b"\n"):
        try:
            if isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
                return
            if isinstance(public_key, rsa.RSAPublicKey):
                for scheme in (
                    padding.PKCS1v15(),
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                ):
                    try:
                        public_key.verify(raw, message, scheme, hashes.SHA256())
                        return
                    except InvalidSignature:
                        continue
        except InvalidSignature:
            continue
    raise PossessionNotProven(
        "The signature does not verify with the certificate's key: sign the nonce shown, as "
        "it is, with the private key of this certificate (SHA-256)."
    )
