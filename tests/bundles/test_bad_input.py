"""Bad input to keys and bundles is a 4xx or a form error, never a 500: NUL characters in
key paths and labels, lone surrogates, a ``next`` that is not a path."""

import pytest

from bundles.models import PublicKey
from bundles.services import bundle_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(alice) -> PublicKey:
    return bundle_issue(user=alice, label="laptop").key


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


@pytest.mark.parametrize("action", ["label", "signing", "revoke"])
def test_a_nul_in_a_key_path_is_the_404_page(as_alice, key, action):
    assert as_alice.post(f"/keys/%00/{action}/", {"label": "x"}).status_code == 404
    assert as_alice.post(f"/keys/{key.id}%00/{action}/", {"label": "x"}).status_code == 404


def test_a_nul_in_a_label_is_refused_with_a_message(as_alice, key):
    response = as_alice.post(f"/keys/{key.id}/label/", {"label": "x\x00y"}, follow=True)
    assert response.status_code == 200
    assert any("Null characters are not allowed." in str(m) for m in response.context["messages"])
    key.refresh_from_db()
    assert key.label == "laptop"


@pytest.mark.parametrize(
    "target", ["somewhere", "\ufffd\ufffd", "profile", "https://evil.example/"]
)
def test_a_next_that_is_not_a_path_of_ours_goes_back_to_the_owner(as_alice, key, target):
    """``redirect()`` takes a bare word for a view name; one that names none was a 500."""
    response = as_alice.post(f"/keys/{key.id}/label/", {"label": "desk", "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/profile/"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/users/alice/keys/%00/"),
        ("patch", "/api/v1/users/alice/keys/%00/"),
        ("delete", "/api/v1/users/alice/keys/%00/"),
        ("get", "/api/v1/users/%00/keys/"),
        ("post", "/api/v1/users/%00/keys/"),
    ],
)
def test_a_nul_in_a_key_api_path_is_a_404(api, alice, method, path):
    response = getattr(api(alice), method)(path, {"label": "x"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("label", ["x\\u0000y", "\\ud800"])
def test_a_bad_label_through_the_api_is_a_400(api, alice, key, label):
    response = api(alice).patch(
        f"/api/v1/users/alice/keys/{key.id}/",
        f'{{"label": "{label}"}}',
        content_type="application/json",
    )
    assert response.status_code == 400
    key.refresh_from_db()
    assert key.label == "laptop"


def test_a_lone_surrogate_in_a_bundle_request_is_a_400(api, alice):
    response = api(alice).post(
        "/api/v1/bundles/", '{"label": "\\udc00"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert "lone surrogates" in response.json()["detail"]
