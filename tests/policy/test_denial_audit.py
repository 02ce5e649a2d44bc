"""Denied evaluations are audited without letting a caller fill the log: identical denials
within a window are one entry whose count grows, and one caller's distinct denials beyond a
limit fold into one more entry. Nothing goes uncounted."""

import datetime as dt

import pytest
from django.utils import timezone

from audit import models as audit
from audit.models import AuditEntry
from policy import services as policy
from tests.factories import make_team, make_user
from trust.notary.errors import NotFound

pytestmark = pytest.mark.django_db

EVALUATE = "/api/v1/policy/evaluate/"
DENIED = "policy.evaluation_denied"


@pytest.fixture(autouse=True)
def enforced_without_trust_data(admin, monkeypatch):
    """Every image is denied: the policy is enforced and no repository has trust data."""
    make_team("ci", actor=admin)
    policy.policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )

    def no_trust_data(gun):
        raise NotFound("no trust data", gun=gun)

    monkeypatch.setattr(policy, "verified_repository", no_trust_data)


def evaluate(client, image: str = "registry.example.com/shop/web:1.0", **extra):
    response = client.post(EVALUATE, {"image": image}, format="json", **extra)
    assert response.json()["decision"] == "denied"
    return response


def test_fifty_identical_denials_are_one_entry_counting_fifty(api, alice):
    client = api(alice)
    for _ in range(50):
        evaluate(client)
    entry = AuditEntry.objects.get(action=DENIED)
    assert entry.occurrences == 50
    assert entry.actor_name == "alice"
    assert entry.after["image"] == "registry.example.com/shop/web:1.0"
    assert entry.fold.last_at >= entry.created_at


def test_the_count_is_in_the_audit_api_and_on_the_audit_page(api, admin, alice, client):
    for _ in range(3):
        evaluate(api(alice))
    listed = api(admin).get("/api/v1/audit/", {"action": DENIED}).json()["results"]
    assert len(listed) == 1
    assert listed[0]["occurrences"] == 3
    assert listed[0]["last_occurred_at"] >= listed[0]["created_at"]
    one = api(admin).get("/api/v1/audit/", {"action": "policy.updated"}).json()["results"]
    assert one[0]["occurrences"] == 1
    client.force_login(admin)
    assert "\N{MULTIPLICATION SIGN}3" in client.get("/audit/", {"action": DENIED}).text


def test_what_differs_is_a_new_entry(api, alice):
    bob = make_user("bob")
    evaluate(api(alice))
    evaluate(api(alice), "registry.example.com/shop/web:2.0")  # another image
    evaluate(api(bob))  # another user
    evaluate(api(alice), REMOTE_ADDR="192.0.2.9")  # another address
    evaluate(api(alice))  # the first again
    entries = AuditEntry.objects.filter(action=DENIED)
    assert entries.count() == 4
    assert sorted(entry.occurrences for entry in entries) == [1, 1, 1, 2]


def test_after_the_window_a_denial_starts_a_new_entry(api, alice, settings):
    settings.GATEHOUSE_AUDIT_FOLD_SECONDS = 60
    client = api(alice)
    evaluate(client)
    evaluate(client)
    audit.AuditFold.objects.update(first_at=timezone.now() - dt.timedelta(seconds=61))
    evaluate(client)
    evaluate(client)
    counts = list(AuditEntry.objects.filter(action=DENIED).values_list("fold__occurrences"))
    assert counts == [(2,), (2,)]  # newest first


def test_varying_the_image_folds_past_the_distinct_limit(api, alice, settings):
    settings.GATEHOUSE_AUDIT_FOLD_DISTINCT = 3
    client = api(alice)
    for n in range(10):
        evaluate(client, f"registry.example.com/shop/web{n}:1.0")
    evaluate(client, "registry.example.com/shop/web0:1.0")  # identical to a kept one
    entries = list(AuditEntry.objects.filter(action=DENIED).order_by("id"))
    assert len(entries) == 4
    assert [e.after["image"] for e in entries[:3]] == [
        f"registry.example.com/shop/web{n}:1.0" for n in range(3)
    ]
    assert [e.occurrences for e in entries] == [2, 1, 1, 7]
    overflow = entries[3]
    assert overflow.after["image"] == "registry.example.com/shop/web3:1.0"
    assert overflow.after["overflow"] == {"distinct_limit": 3, "window_seconds": 600}
    assert sum(e.occurrences for e in entries) == 11  # every denial counted once


def test_a_denial_outside_a_request_is_folded_too():
    for _ in range(3):
        policy.image_evaluate(image="registry.example.com/shop/web:1.0")
    entry = AuditEntry.objects.get(action=DENIED)
    assert (entry.actor, entry.occurrences) == (None, 3)


def test_entries_stay_append_only(api, alice):
    client = api(alice)
    evaluate(client)
    entry = AuditEntry.objects.get(action=DENIED)
    before = (entry.created_at, entry.after)
    evaluate(client)
    entry.refresh_from_db()
    assert (entry.created_at, entry.after) == before
    assert entry.occurrences == 2
