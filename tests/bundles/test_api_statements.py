"""The keys API's reads cost a fixed number of statements and read no more than they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bundles.services import bundle_issue, client_ca_ensure
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def read(client, path: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries), [query["sql"] for query in queries]


def test_a_keys_page_takes_as_many_statements_for_many_keys_as_for_one(api, admin, alice):
    first = bundle_issue(user=alice, signing=True).key
    client = api(admin)
    few, _ = read(client, "/api/v1/users/alice/keys/")
    for _ in range(5):
        bundle_issue(user=alice)
    many, sql = read(client, "/api/v1/users/alice/keys/")
    assert many == few <= 3  # the token; the count and the page
    one, sql_of_one = read(client, f"/api/v1/users/alice/keys/{first.id}/")
    assert one <= 2  # the token; the key
    assert not any("password" in text for text in sql[1:] + sql_of_one[1:])


def test_keys_show_their_owners_role_only_when_signing(api, alice):
    signing = bundle_issue(user=alice, signing=True).key
    plain = bundle_issue(user=alice).key
    client = api(alice)
    listed = {
        k["id"]: k["signing_role"]
        for k in client.get("/api/v1/users/alice/keys/").json()["results"]
    }
    assert listed == {signing.id: "targets/alice", plain.id: None}
    assert client.get(f"/api/v1/users/alice/keys/{signing.id}/").json()["signing_role"] == (
        "targets/alice"
    )
    bob = make_user("bob")
    bobs = bundle_issue(user=bob, signing=True).key
    assert api(bob).get(f"/api/v1/users/bob/keys/{bobs.id}/").json()["signing_role"] == (
        "targets/bob"
    )


def test_a_404_says_whether_the_owner_or_the_key_is_missing(api, admin, alice):
    bob = make_user("bob")
    key = bundle_issue(user=bob).key
    missing_user = {"detail": "No User matches the given query."}
    missing_key = {"detail": "No PublicKey matches the given query."}
    as_admin, as_alice = api(admin), api(alice)
    assert as_admin.get("/api/v1/users/ghost/keys/").json() == missing_user
    assert as_admin.get(f"/api/v1/users/ghost/keys/{key.id}/").json() == missing_user
    assert as_admin.get(f"/api/v1/users/alice/keys/{key.id}/").json() == missing_key
    assert as_admin.get("/api/v1/users/alice/keys/").json()["results"] == []
    # bob and his keys do not exist for alice
    assert as_alice.get("/api/v1/users/bob/keys/").json() == missing_user
    assert as_alice.get(f"/api/v1/users/bob/keys/{key.id}/").json() == missing_user
    assert as_alice.get(f"/api/v1/users/alice/keys/{key.id}/").json() == missing_key
    assert as_alice.get("/api/v1/users/alice/keys/").json()["count"] == 0


def test_the_ca_certificate_is_read_without_the_sealed_key(api, alice):
    ca = client_ca_ensure()
    client = api(alice)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/bundles/ca.pem")
    assert response.content.decode() == ca.certificate
    assert not any("sealed_private_key" in query["sql"] for query in queries)
