import datetime as dt
import io
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DatabaseError

from bundles import services
from bundles.models import CertificateAuthority, PublicKey
from gatehouse.keywrap import unseal
from tests.bundles.helpers import (
    certificate_pem,
    file_modes,
    open_bundle,
    proof,
    registration,
    rsa_key,
    signed_nonce,
)
from trust.notary.keys import canonical_key_id, certificate_tuf_key, public_tuf_key

pytestmark = pytest.mark.django_db

BUNDLE_FILES = {
    "ca.pem",
    "cert.pem",
    "key.pem",
    "cert.pub",
    "env.sh",
    "env.ps1",
    "env.cmd",
    "meta.json",
    "README.txt",
}


def test_a_bundle_holds_a_fresh_key_and_a_certificate_signed_by_the_client_ca(alice):
    bundle = services.bundle_issue(user=alice)
    files = open_bundle(bundle.archive)
    assert set(files) == BUNDLE_FILES
    assert file_modes(bundle.archive)["key.pem"] == 0o600

    ca = x509.load_pem_x509_certificate(files["ca.pem"])
    certificate = x509.load_pem_x509_certificate(files["cert.pem"])
    certificate.verify_directly_issued_by(ca)
    key = serialization.load_pem_private_key(files["key.pem"], None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert key.public_key() == certificate.public_key()
    assert serialization.load_pem_public_key(files["cert.pub"]) == certificate.public_key()

    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Client"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Gatehouse"
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert dt.timedelta(days=365) <= lifetime <= dt.timedelta(days=365, minutes=10)

    stored = PublicKey.objects.get(user=alice)
    assert stored.id == canonical_key_id(certificate) == bundle.key.id
    assert stored.tuf_key_id == certificate_tuf_key(certificate).key_id
    assert stored.certificate.encode() == files["cert.pem"]
    assert stored.label.startswith("Generated on ")
    assert stored.is_signing_key is False
    assert stored.algorithm == "ecdsa-p256"


def test_the_private_key_is_stored_nowhere(alice):
    bundle = services.bundle_issue(user=alice, label="laptop", signing=True)
    key_pem = open_bundle(bundle.archive)["key.pem"]
    key_body = b"".join(key_pem.splitlines()[1:-1]).decode()
    stored = [repr(row) for row in PublicKey.objects.values_list()] + [
        repr(row) for row in CertificateAuthority.objects.values_list()
    ]
    assert not any(key_body[:40] in row for row in stored)
    private = serialization.load_pem_private_key(key_pem, None)
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    assert not any(raw.hex() in row for row in stored)


def test_a_key_and_its_audit_entry_are_written_together(alice, monkeypatch):
    """One transaction: one commit to wait for, and no key issued without its entry."""

    def audit_unavailable(**fields: object) -> None:
        raise DatabaseError("the audit log cannot be written")

    monkeypatch.setattr(services, "audit_record", audit_unavailable)
    with pytest.raises(DatabaseError):
        services.bundle_issue(user=alice)
    assert not PublicKey.objects.exists()


def test_two_downloads_give_two_keys_both_on_the_account(alice):
    first = services.bundle_issue(user=alice)
    second = services.bundle_issue(user=alice, label="ci server", signing=True)
    assert first.key.id != second.key.id
    keys = {key.id: key for key in PublicKey.objects.filter(user=alice)}
    assert set(keys) == {first.key.id, second.key.id}
    assert keys[second.key.id].label == "ci server"
    assert keys[second.key.id].is_signing_key is True
    assert open_bundle(first.archive)["ca.pem"] == open_bundle(second.archive)["ca.pem"]
    assert CertificateAuthority.objects.count() == 1


def test_the_ca_key_is_sealed_at_rest(alice):
    services.bundle_issue(user=alice)
    ca = CertificateAuthority.objects.get()
    sealed = bytes(ca.sealed_private_key)
    assert b"PRIVATE KEY" not in sealed
    key = serialization.load_der_private_key(unseal(sealed, purpose="bundles.ca:client"), None)
    assert key.public_key() == x509.load_pem_x509_certificate(ca.certificate.encode()).public_key()


def test_environment_scripts_point_docker_at_the_bundle(alice, settings):
    settings.GATEHOUSE_DOCKER_HOST = "tcp://ucp.example.com:443"
    files = open_bundle(services.bundle_issue(user=alice).archive)
    assert b"DOCKER_TLS_VERIFY=1" in files["env.sh"]
    assert b'export DOCKER_HOST="tcp://ucp.example.com:443"' in files["env.sh"]
    assert b"DOCKER_CERT_PATH" in files["env.ps1"]
    assert b"set DOCKER_CERT_PATH=%~dp0" in files["env.cmd"]
    assert b'"Host": "tcp://ucp.example.com:443"' in files["meta.json"]
    assert b"notary key import key.pem" in files["README.txt"]
    assert b"docker trust key load key.pem" in files["README.txt"]


def test_bundle_issuance_logs_no_key_material(alice, caplog):
    caplog.set_level(logging.DEBUG)
    bundle = services.bundle_issue(user=alice)
    key_pem = open_bundle(bundle.archive)["key.pem"].decode()
    body = "".join(key_pem.splitlines()[1:-1])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert bundle.key.id in logged
    for chunk in (body[i : i + 16] for i in range(0, len(body) - 16, 16)):
        assert chunk not in logged
    assert "PRIVATE KEY" not in logged


def test_register_accepts_ecdsa_and_strong_rsa(alice):
    ec_key = services.public_key_register(
        actor=alice, user=alice, **registration(alice), label="yubikey"
    )
    assert ec_key.algorithm == "ecdsa-p256"
    assert ec_key.source == "registered"
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert (
        services.public_key_register(
            actor=alice, user=alice, **registration(alice, key=p384)
        ).algorithm
        == "ecdsa-p384"
    )
    rsa = services.public_key_register(
        actor=alice, user=alice, **registration(alice, key=rsa_key(2048)), signing=True
    )
    assert rsa.algorithm == "rsa-2048"
    assert rsa.is_signing_key
    assert rsa.id == public_tuf_key(rsa_key_of(rsa)).key_id


def rsa_key_of(key: PublicKey):
    return x509.load_pem_x509_certificate(key.certificate.encode()).public_key()


@pytest.mark.parametrize(
    ("pem", "reason"),
    [
        (lambda: "garbage", "not a PEM-encoded"),
        (lambda: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "not a PEM"),
        (lambda: certificate_pem(days=-1, starts_days_ago=10), "expired"),
        (lambda: certificate_pem(is_ca=True), "CA certificate"),
        (lambda: certificate_pem(key=rsa_key(1024)), "1024 bits"),
        (lambda: certificate_pem(key=ec.generate_private_key(ec.SECP521R1())), "secp521r1"),
        (lambda: certificate_pem(key_usage="encipher"), "does not include digitalSignature"),
        (lambda: certificate_pem(key_usage="ca"), "does not include digitalSignature"),
    ],
)
def test_register_refuses_bad_certificates_with_the_reason(alice, pem, reason):
    with pytest.raises(ValidationError) as error:
        services.public_key_register(actor=alice, user=alice, certificate=pem(), **PROOF)
    assert reason in " ".join(error.value.message_dict["certificate"])
    assert not PublicKey.objects.exists()


# Never checked: the certificate is refused first.
PROOF = {"nonce": "n", "signature": "AAAA"}


def test_a_certificate_whose_key_usage_includes_signing_is_accepted(alice):
    key = services.public_key_register(
        actor=alice, user=alice, **registration(alice, key_usage="sign")
    )
    assert key.source == "registered"


def private_key_texts() -> list[str]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sec1 = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    encrypted = (
        rsa_key(2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        .decode()
    )
    # A whole bundle pasted: the certificate and its key together.
    both = certificate_pem(key=ec_key) + pkcs8
    return [pkcs8, sec1, encrypted, both]


@pytest.mark.parametrize("index", range(4), ids=["pkcs8", "sec1", "encrypted-rsa", "cert+key"])
def test_a_pasted_private_key_is_refused_without_repeating_it(alice, index, caplog):
    pasted = private_key_texts()[index]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValidationError) as error:
        services.public_key_register(actor=alice, user=alice, certificate=pasted, **PROOF)
    messages = error.value.message_dict["certificate"]
    assert messages == [
        "This is a private key; paste the certificate (e.g. cert.pem), never the private key. "
        "Nothing of it was kept."
    ]
    body = "".join(line for line in pasted.splitlines() if not line.startswith("-----"))
    said = " ".join(messages) + caplog.text
    assert not any(body[i : i + 16] in said for i in range(0, len(body) - 16, 16))
    assert not PublicKey.objects.exists()


def test_register_refuses_a_key_on_anyones_account(alice, admin):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = certificate_pem(key=key)
    services.public_key_register(actor=admin, user=admin, certificate=pem, **proof(admin, key))
    with pytest.raises(services.KeyAlreadyRegistered):
        services.public_key_register(actor=alice, user=alice, certificate=pem, **proof(alice, key))
    assert PublicKey.objects.filter(user=alice).count() == 0


# --- Proof of possession -----------------------------------------------------------------


def test_nobody_registers_a_colleagues_certificate_without_its_key(alice, admin):
    """The colleague's certificate is public (in every delegation): without the private key
    there is no signature of the nonce, so it is refused, and the colleague registers it
    later without a 409."""
    colleague_key = ec.generate_private_key(ec.SECP256R1())
    pem = certificate_pem(key=colleague_key)
    own_key = ec.generate_private_key(ec.SECP256R1())
    attempts = [
        proof(alice, own_key),  # signed, but by another key
        {**proof(alice, colleague_key), "signature": ""},
        {**proof(alice, colleague_key), "signature": "not base64!"},
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as error:
            services.public_key_register(actor=alice, user=alice, certificate=pem, **attempt)
        assert set(error.value.message_dict) == {"signature"}
    assert not PublicKey.objects.exists()

    key = services.public_key_register(
        actor=admin, user=admin, certificate=pem, **proof(admin, colleague_key)
    )
    assert key.user == admin


def test_gatehouses_token_signing_certificate_cannot_be_registered(alice):
    """It is in every /auth/token answer's x5c; its key is Gatehouse's alone."""
    from trust import custody

    token_certificate = custody.token_key().certificate
    with pytest.raises(ValidationError) as error:
        services.public_key_register(
            actor=alice,
            user=alice,
            certificate=token_certificate,
            **proof(alice, ec.generate_private_key(ec.SECP256R1())),
        )
    assert set(error.value.message_dict) == {"signature"}
    assert not PublicKey.objects.exists()


def test_a_nonce_is_the_askers_own(alice, admin):
    key = ec.generate_private_key(ec.SECP256R1())
    admins = proof(admin, key)
    with pytest.raises(ValidationError) as error:
        services.public_key_register(
            actor=alice, user=alice, certificate=certificate_pem(key=key), **admins
        )
    assert error.value.message_dict == {
        "nonce": ["This nonce was given to someone else; ask for your own."]
    }


@pytest.mark.parametrize(
    ("nonce", "message"),
    [
        ("", "Ask for a nonce first and sign it with the key."),
        ("made-up:1:abc", "This is not a nonce Gatehouse gave."),
        ("é" * 10, "This is not a nonce Gatehouse gave."),
    ],
)
def test_a_nonce_gatehouse_did_not_give_is_refused(alice, nonce, message):
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValidationError) as error:
        services.public_key_register(
            actor=alice,
            user=alice,
            certificate=certificate_pem(key=key),
            nonce=nonce,
            signature=signed_nonce(key, nonce),
        )
    assert error.value.message_dict == {"nonce": [message]}


def test_a_tampered_nonce_is_refused(alice):
    key = ec.generate_private_key(ec.SECP256R1())
    nonce = services.registration_challenge_issue(user=alice).nonce
    value, timestamp, signature = nonce.split(":")
    forged = f"{value}x:{timestamp}:{signature}"
    with pytest.raises(ValidationError) as error:
        services.public_key_register(
            actor=alice,
            user=alice,
            certificate=certificate_pem(key=key),
            nonce=forged,
            signature=signed_nonce(key, forged),
        )
    assert error.value.message_dict == {"nonce": ["This is not a nonce Gatehouse gave."]}


def test_a_nonce_expires_after_ten_minutes(alice, monkeypatch):
    key = ec.generate_private_key(ec.SECP256R1())
    challenge = services.registration_challenge_issue(user=alice)
    now = dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < challenge.expires_at - now <= dt.timedelta(minutes=10)
    later = now.timestamp() + services.CHALLENGE_SECONDS + 2
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    with pytest.raises(ValidationError) as error:
        services.public_key_register(
            actor=alice,
            user=alice,
            certificate=certificate_pem(key=key),
            nonce=challenge.nonce,
            signature=signed_nonce(key, challenge.nonce),
        )
    assert error.value.message_dict == {
        "nonce": ["The nonce has expired; ask for a new one and sign it."]
    }


def test_a_nonce_serves_one_registration(alice):
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    nonce = services.registration_challenge_issue(user=alice).nonce
    assert services.registration_challenge_valid(user=alice, nonce=nonce)
    services.public_key_register(
        actor=alice,
        user=alice,
        certificate=certificate_pem(key=first),
        nonce=nonce,
        signature=signed_nonce(first, nonce),
    )
    assert not services.registration_challenge_valid(user=alice, nonce=nonce)
    with pytest.raises(ValidationError) as error:
        services.public_key_register(
            actor=alice,
            user=alice,
            certificate=certificate_pem(key=second),
            nonce=nonce,
            signature=signed_nonce(second, nonce),
        )
    assert error.value.message_dict == {
        "nonce": ["This nonce has been used already; ask for a new one and sign it."]
    }
    assert PublicKey.objects.count() == 1


def test_a_failed_registration_leaves_the_nonce_usable(alice):
    key = ec.generate_private_key(ec.SECP256R1())
    nonce = services.registration_challenge_issue(user=alice).nonce
    good = {"nonce": nonce, "signature": signed_nonce(key, nonce)}
    with pytest.raises(ValidationError):
        services.public_key_register(
            actor=alice, user=alice, certificate=certificate_pem(key=key), label="x" * 101, **good
        )
    assert services.registration_challenge_valid(user=alice, nonce=nonce)
    services.public_key_register(
        actor=alice, user=alice, certificate=certificate_pem(key=key), **good
    )


def test_a_signature_of_the_nonce_with_echos_newline_and_line_breaks_is_accepted(alice):
    key = ec.generate_private_key(ec.SECP256R1())
    nonce = services.registration_challenge_issue(user=alice).nonce
    wrapped = signed_nonce(key, nonce + "\n")
    wrapped = "\n".join(wrapped[i : i + 76] for i in range(0, len(wrapped), 76)) + "\n"
    services.public_key_register(
        actor=alice,
        user=alice,
        certificate=certificate_pem(key=key),
        nonce=nonce,
        signature=wrapped,
    )


def test_revocation_is_final(alice):
    key = services.bundle_issue(user=alice, signing=True).key
    services.public_key_revoke(actor=alice, key=key)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.is_signing_key is False
    with pytest.raises(ValidationError) as error:
        services.public_key_update(actor=alice, key=key, is_signing_key=True)
    assert "is_signing_key" in error.value.message_dict
    key.refresh_from_db()
    assert key.is_signing_key is False
    services.public_key_update(actor=alice, key=key, label="old laptop")
    assert PublicKey.objects.get(pk=key.pk).label == "old laptop"


def test_labels_are_bounded(alice):
    with pytest.raises(ValidationError) as error:
        services.bundle_issue(user=alice, label="x" * 101)
    assert "label" in error.value.message_dict
    assert not PublicKey.objects.exists()


def test_a_too_long_label_is_an_error_on_every_path_never_cut(alice):
    key = services.bundle_issue(user=alice, label="laptop").key
    too_long = "é" * 101
    with pytest.raises(ValidationError) as issued:
        services.bundle_issue(user=alice, label=too_long)
    with pytest.raises(ValidationError) as registered:
        services.public_key_register(actor=alice, user=alice, **registration(alice), label=too_long)
    with pytest.raises(ValidationError) as updated:
        services.public_key_update(actor=alice, key=key, label=too_long)
    for error in (issued, registered, updated):
        assert error.value.message_dict == {
            "label": ["Labels have at most 100 characters (this one has 101)."]
        }
    assert list(PublicKey.objects.values_list("label", flat=True)) == ["laptop"]
    exact = "x" * 100
    assert services.public_key_update(actor=alice, key=key, label=f"  {exact}  ").label == exact


def test_clearing_a_label_stores_it_empty(alice):
    """Only a new bundle without a label is named after its date; a cleared label, or a
    registered key without one, stays empty (the console shows the key ID)."""
    key = services.bundle_issue(user=alice, label="laptop").key
    services.public_key_update(actor=alice, key=key, label="")
    assert PublicKey.objects.get(pk=key.pk).label == ""
    registered = services.public_key_register(actor=alice, user=alice, **registration(alice))
    assert registered.label == ""
    assert services.bundle_issue(user=alice, label="  ").key.label.startswith("Generated on ")


def test_the_management_command_creates_the_ca_once_and_prints_it(alice):
    first, second = io.StringIO(), io.StringIO()
    call_command("client_ca", stdout=first)
    call_command("client_ca", stdout=second)
    assert first.getvalue().startswith("-----BEGIN CERTIFICATE-----")
    assert first.getvalue() == second.getvalue()
    bundle = services.bundle_issue(user=alice)
    assert open_bundle(bundle.archive)["ca.pem"].decode() == first.getvalue()
