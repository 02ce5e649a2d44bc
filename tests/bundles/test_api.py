import pytest
from cryptography import x509

from bundles.models import PublicKey
from bundles.services import bundle_issue
from tests.bundles.helpers import certificate_pem, open_bundle
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
        body = {"certificate": certificate_pem()}
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
    pem = certificate_pem()
    assert (
        api(admin).post("/api/v1/users/root/keys/", {"certificate": pem}, format="json").status_code
        == 201
    )
    response = api(alice).post("/api/v1/users/alice/keys/", {"certificate": pem}, format="json")
    assert response.status_code == 409
    assert "registered already" in response.json()["detail"]
    assert not PublicKey.objects.filter(user=alice).exists()


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/bundles/", {"label": "x" * 101}, "label"),
        ("post", "/api/v1/bundles/", {"signing": "perhaps"}, "signing"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": "garbage"}, "certificate"),
        ("post", "/api/v1/users/alice/keys/", {}, "certificate"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": ["x"]}, "certificate"),
        ("post", "/api/v1/users/alice/keys/", {"certificate": "x" * 20001}, "certificate"),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(days=-1, starts_days_ago=5)},
            "certificate",
        ),
        (
            "post",
            "/api/v1/users/alice/keys/",
            {"certificate": certificate_pem(is_ca=True)},
            "certificate",
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
