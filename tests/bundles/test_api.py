import base64
import datetime as dt
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bundles.models import PublicKey
from bundles.services import bundle_issue
from tests.bundles.helpers import certificate_pem, open_bundle, proof, registration
from tests.conftest import require
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_post_bundles_answers_a_zip_download_that_no_cache_keeps(api, alice):
    response = api(alice).post(
        "/api/v1/bundles/", {"label": "jenkins01", "signing": True}, format="json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="gatehouse-bundle-alice.zip"'
    assert response["Cache-Control"] == "no-store"
    files = open_bundle(response.content)
    key = PublicKey.objects.get(user=alice)
    assert files["cert.pem"].decode() == key.certificate
    assert key.label == "jenkins01"
    assert key.is_signing_key


def test_post_bundles_without_a_body_uses_the_defaults(api, alice):
    assert api(alice).post("/api/v1/bundles/").status_code == 200
    key = PublicKey.objects.get(user=alice)
    assert key.label.startswith("Generated on ")
    assert key.is_signing_key is False


def test_bundles_need_authentication(api):
    assert api().post("/api/v1/bundles/").status_code == 401
    assert api().get("/api/v1/bundles/ca.pem").status_code == 401


def test_the_ca_certificate_is_served_to_any_user(api, alice):
    response = api(alice).get("/api/v1/bundles/ca.pem")
    assert response.status_code == 200
    ca = x509.load_pem_x509_certificate(response.content)
    files = open_bundle(api(alice).post("/api/v1/bundles/").content)
    x509.load_pem_x509_certificate(files["cert.pem"]).verify_directly_issued_by(ca)


def test_keys_list_shows_every_field_and_no_private_material(api, alice):
    issued = bundle_issue(user=alice).key
    listed = api(alice).get("/api/v1/users/alice/keys/").json()
    assert listed["count"] == 1
    key = listed["results"][0]
    assert set(key) == {
        "id",
        "signing_role",
        "label",
        "is_signing_key",
        "algorithm",
        "certificate",
        "source",
        "created_at",
        "expires_at",
        "revoked_at",
    }
    assert key["id"] == issued.id
    assert "PRIVATE" not in str(listed)


# (method, path suffix, body, {caller: status}); the key belongs to alice.
KEY_MATRIX = [
    ("get", "", None, {"anonymous": 401, "alice": 200, "bob": 404, "admin": 200}),
    ("get", "{id}/", None, {"anonymous": 401, "alice": 200, "bob": 404, "admin": 200}),
    ("patch", "{id}/", {"label": "x"}, {"anonymous": 401, "alice": 200, "bob": 404, "admin": 200}),
    ("delete", "{id}/", None, {"anonymous": 401, "alice": 204, "bob": 404, "admin": 204}),
    ("post", "", "certificate", {"anonymous": 401, "alice": 201, "bob": 404, "admin": 201}),
]


@pytest.mark.parametrize("caller", ["anonymous", "alice", "bob", "admin"])
@pytest.mark.parametrize(("method", "suffix", "body", "expected"), KEY_MATRIX)
def test_key_permission_matrix(api, admin, alice, caller, method, suffix, body, expected):
    users = {"alice": alice, "bob": make_user("bob"), "admin": admin, "anonymous": None}
    key = bundle_issue(user=alice).key
    if body == "certificate":
        body = registration(users[caller]) if users[caller] else {"certificate": "x"}
    path = f"/api/v1/users/alice/keys/{suffix.format(id=key.id)}"
    response = getattr(api(users[caller]), method)(path, body, format="json")
    assert response.status_code == expected[caller], response.content


def test_patch_labels_and_marks_signing_keys(api, alice):
    key = bundle_issue(user=alice).key
    client = api(alice)
    response = client.patch(
        f"/api/v1/users/alice/keys/{key.id}/",
        {"label": "build server", "is_signing_key": True},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["label"] == "build server"
    assert response.json()["is_signing_key"] is True


def test_delete_revokes_and_a_revoked_key_never_signs_again(api, alice):
    key = bundle_issue(user=alice, signing=True).key
    client = api(alice)
    assert client.delete(f"/api/v1/users/alice/keys/{key.id}/").status_code == 204
    shown = client.get(f"/api/v1/users/alice/keys/{key.id}/").json()
    assert shown["revoked_at"] is not None
    assert shown["is_signing_key"] is False
    response = client.patch(
        f"/api/v1/users/alice/keys/{key.id}/", {"is_signing_key": True}, format="json"
    )
    assert response.status_code == 400
    assert "is_signing_key" in response.json()
    assert PublicKey.objects.get(pk=key.pk).is_signing_key is False


def test_registering_a_key_someone_has_is_a_409(api, admin, alice):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = certificate_pem(key=key)
    admins = {"certificate": pem, **proof(admin, key)}
    assert api(admin).post("/api/v1/users/root/keys/", admins, format="json").status_code == 201
    alices = {"certificate": pem, **proof(alice, key)}
    response = api(alice).post("/api/v1/users/alice/keys/", alices, format="json")
    assert response.status_code == 409
    assert "registered already" in response.json()["detail"]
    assert not PublicKey.objects.filter(user=alice).exists()


# Never checked when the certificate or the label is refused first.
PROOF = {"nonce": "n", "signature": "AAAA"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/bundles/", {"label": "x" * 101}, "label"),
        ("post", "/api/v1/bundles/", {"signing": "perhaps"}, "signing"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": "garbage", **PROOF}, "certificate"),
        ("post", "/api/v1/users/alice/keys/", {}, "certificate"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": ["x"], **PROOF}, "certificate"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": "x" * 20001}, "certificate"),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(days=-1, starts_days_ago=5), **PROOF},
            "certificate",
        ),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(is_ca=True), **PROOF},
            "certificate",
        ),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(key_usage="encipher"), **PROOF},
            "certificate",
        ),
        ("post", "/api/v1/users/alice/keys/", {"certificate": certificate_pem()}, "nonce"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": certificate_pem()}, "signature"),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(), "nonce": "made-up", "signature": "AAAA"},
            "nonce",
        ),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(), **PROOF, "label": "z" * 101},
            "label",
        ),
        ("patch", "/api/v1/users/alice/keys/{id}/", {"label": "y" * 101}, "label"),
        ("patch", "/api/v1/users/alice/keys/{id}/", {"is_signing_key": "maybe"}, "is_signing_key"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    api, alice, method, path, body, field
):
    key = bundle_issue(user=alice).key
    before = list(PublicKey.objects.values_list("id", "label", "is_signing_key", "revoked_at"))
    response = getattr(api(alice), method)(path.format(id=key.id), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    after = list(PublicKey.objects.values_list("id", "label", "is_signing_key", "revoked_at"))
    assert after == before


def test_unknown_keys_and_users_are_404(api, admin):
    client = api(admin)
    assert client.get("/api/v1/users/ghost/keys/").status_code == 404
    assert client.get("/api/v1/users/root/keys/" + "0" * 64 + "/").status_code == 404
    assert client.get("/api/v1/users/root/keys/not-hex/").status_code == 404


# --- Registration: proof of possession -------------------------------------------------


def test_a_challenge_is_a_fresh_nonce_for_the_caller_that_no_cache_keeps(api, alice):
    assert api().post("/api/v1/keys/challenge/").status_code == 401
    client = api(alice)
    first, second = client.post("/api/v1/keys/challenge/"), client.post("/api/v1/keys/challenge/")
    assert first.status_code == 200
    assert first["Cache-Control"] == "no-store"
    body = first.json()
    assert set(body) == {"nonce", "expires_at"}
    assert body["nonce"] != second.json()["nonce"]
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(minutes=9) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=10)


def test_registration_through_the_api_needs_the_keys_signature_of_the_callers_nonce(
    api, admin, alice
):
    """Alice cannot register a certificate whose key she does not hold (a colleague's, or
    one in a token's x5c): she has no signature of her nonce by it."""
    theirs = ec.generate_private_key(ec.SECP256R1())
    pem = certificate_pem(key=theirs)
    client = api(alice)
    nonce = client.post("/api/v1/keys/challenge/").json()["nonce"]
    mine = ec.generate_private_key(ec.SECP256R1())
    forged = {"certificate": pem, "nonce": nonce, "signature": proof(alice, mine)["signature"]}
    response = client.post("/api/v1/users/alice/keys/", forged, format="json")
    assert response.status_code == 400
    assert "does not verify" in response.json()["signature"][0]
    # A nonce the admin asked for is no use to alice, even signed by the key.
    admins = proof(admin, theirs)
    response = client.post(
        "/api/v1/users/alice/keys/", {"certificate": pem, **admins}, format="json"
    )
    assert response.status_code == 400
    assert "someone else" in response.json()["nonce"][0]
    assert not PublicKey.objects.exists()
    # The holder of the key registers it: no 409.
    response = api(admin).post(
        "/api/v1/users/root/keys/", {"certificate": pem, **admins}, format="json"
    )
    assert response.status_code == 201, response.content
    assert PublicKey.objects.get().user == admin


def test_a_pasted_private_key_is_a_400_that_does_not_repeat_it(api, alice):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    response = api(alice).post(
        "/api/v1/users/alice/keys/", {"certificate": pem, **PROOF}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "certificate": [
            "This is a private key; paste the certificate (e.g. cert.pem), never the private "
            "key. Nothing of it was kept."
        ]
    }
    body = "".join(pem.splitlines()[1:-1])
    assert body[16:32] not in response.content.decode()
    assert not PublicKey.objects.exists()


def test_clearing_a_label_through_the_api_leaves_it_empty(api, alice):
    key = bundle_issue(user=alice, label="laptop").key
    response = api(alice).patch(f"/api/v1/users/alice/keys/{key.id}/", {"label": ""}, format="json")
    assert response.status_code == 200
    assert response.json()["label"] == ""
    assert PublicKey.objects.get(pk=key.pk).label == ""


def test_the_readmes_openssl_command_proves_possession(api, alice, tmp_path):
    """The command the README gives, run with the real openssl, for an ECDSA and an RSA key."""
    require(shutil.which("openssl") is not None, "openssl")
    client = api(alice)
    for algorithm in ("ec", "rsa"):
        key_file, cert_file = tmp_path / f"{algorithm}-key.pem", tmp_path / f"{algorithm}.pem"
        options = (
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
            if algorithm == "ec"
            else ["-newkey", "rsa:2048"]
        )
        make_certificate = [
            *("openssl", "req", "-x509", *options, "-nodes", "-days", "30", "-subj", "/CN=ci"),
            *("-addext", "basicConstraints=critical,CA:FALSE"),  # req makes a CA by default
            *("-addext", "keyUsage=critical,digitalSignature"),
            *("-keyout", str(key_file), "-out", str(cert_file)),
        ]
        subprocess.run(make_certificate, check=True, capture_output=True)
        nonce = client.post("/api/v1/keys/challenge/").json()["nonce"]
        sign = 'printf %s "$NONCE" | openssl dgst -sha256 -sign "$KEY" | base64 -w0'
        signed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", sign],
            check=True,
            capture_output=True,
            text=True,
            env={"NONCE": nonce, "KEY": str(key_file), "PATH": "/usr/bin:/bin"},
        ).stdout
        base64.b64decode(signed, validate=True)
        response = client.post(
            "/api/v1/users/alice/keys/",
            {"certificate": cert_file.read_text(), "nonce": nonce, "signature": signed},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["algorithm"] == {"ec": "ecdsa-p256", "rsa": "rsa-2048"}[algorithm]
