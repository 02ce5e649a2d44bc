"""Every change to who may do what counts from the very next request.

The hot paths read as little as they can per request, and some of what they need is kept per
process (compiled statements, unsealed keys, built serializer fields). None of it may decide
an authorisation. Each test here warms a path with the same client in the same process (so
anything a process keeps is kept), changes one thing through the services, and checks that the
next request sees it.
"""

import base64
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from accounts.services import (
    api_token_create,
    api_token_revoke,
    team_member_remove,
    user_deactivate,
    user_update,
)
from policy.models import AdmissionDecision
from tests.factories import make_team, make_user
from trust.models import Repository

VALIDATE = "/api/v1/admission/validate/"
GUN = "registry.example.com/ci/app"
PUSH_PULL = f"repository:{GUN}:push,pull"
POD_REVIEW = Path(__file__).parents[1] / "policy" / "fixtures" / "pod.json"


def warm(send, expected_status: int, times: int = 3):
    for _ in range(times):
        response = send()
        assert response.status_code == expected_status, response.content
    return response


@pytest.fixture
def bob(db):
    return make_user("bob", full_name="Bob Example")


def bearer(client, raw_token: str):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    return client


def test_a_revoked_token_is_refused_at_the_next_request(bob):
    raw, token = api_token_create(user=bob)
    client = bearer(APIClient(), raw)
    warm(lambda: client.get("/api/v1/users/bob/"), 200)

    api_token_revoke(token=token)

    assert client.get("/api/v1/users/bob/").status_code == 401


def test_a_deactivated_user_is_refused_at_the_next_request(admin, bob):
    raw, _ = api_token_create(user=bob)
    client = bearer(APIClient(), raw)
    warm(lambda: client.get("/api/v1/policy/"), 200)

    user_deactivate(actor=admin, user=bob)

    assert client.get("/api/v1/policy/").status_code == 401


def test_a_demoted_admin_loses_admin_reads_at_the_next_request(admin, bob):
    user_update(actor=admin, user=bob, is_admin=True)
    raw, _ = api_token_create(user=bob)
    client = bearer(APIClient(), raw)
    warm(lambda: client.get("/api/v1/audit/"), 200)
    warm(lambda: client.get("/api/v1/admission/decisions/"), 200)

    user_update(actor=admin, user=bob, is_admin=False)

    assert client.get("/api/v1/audit/").status_code == 403
    assert client.get("/api/v1/admission/decisions/").status_code == 403


def test_a_permission_taken_away_refuses_the_next_admission_review(admin, bob):
    reviewers = Group.objects.create(name="reviewers")
    reviewers.permissions.add(Permission.objects.get(codename="review_admission"))
    bob.groups.add(reviewers)
    raw, _ = api_token_create(user=bob)
    client = bearer(APIClient(), raw)
    review = json.loads(POD_REVIEW.read_text())
    warm(lambda: client.post(VALIDATE, review, format="json"), 200)
    decisions = AdmissionDecision.objects.count()

    bob.groups.remove(reviewers)

    assert client.post(VALIDATE, review, format="json").status_code == 403
    assert AdmissionDecision.objects.count() == decisions

    bob.user_permissions.add(Permission.objects.get(codename="review_admission"))
    assert client.post(VALIDATE, review, format="json").status_code == 200
    assert AdmissionDecision.objects.count() == decisions + 1


def test_leaving_a_signing_team_takes_push_away_at_the_next_token(client, admin, bob, settings):
    ci = make_team("ci", members=(bob,), actor=admin)
    Repository.objects.create(gun=GUN).signer_teams.set([ci])
    raw, _ = api_token_create(user=bob)
    basic = "Basic " + base64.b64encode(f"bob:{raw}".encode()).decode()

    def ask():
        return client.get(
            "/auth/token",
            {"service": settings.GATEHOUSE_NOTARY_SERVICE, "scope": PUSH_PULL},
            HTTP_AUTHORIZATION=basic,
        )

    granted = warm(ask, 200).json()
    assert "push" in _actions(granted["token"])

    team_member_remove(actor=admin, team=ci, user=bob)

    assert _actions(ask().json()["token"]) == ["pull"]


def test_a_changed_policy_decides_the_next_evaluation(admin, bob):
    raw, _ = api_token_create(user=bob)
    client = bearer(APIClient(), raw)
    image = {"image": "registry.example.com/public/tool:3"}
    first = warm(lambda: client.post("/api/v1/policy/evaluate/", image, format="json"), 200)
    assert first.json()["decision"] == "not_enforced"

    as_admin = bearer(APIClient(), api_token_create(user=admin)[0])
    changed = as_admin.put(
        "/api/v1/policy/content-trust/",
        {
            "enabled": True,
            "mode": "enforced",
            "signing_teams": [],
            "allow_repos": ["registry.example.com/public/*"],
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content

    after = client.post("/api/v1/policy/evaluate/", image, format="json").json()
    assert (after["decision"], after["rule"]["name"]) == ("allowed", "exempt-repositories")


def _actions(token: str) -> list[str]:
    """The actions a Notary token grants on ``GUN``, read from its claims."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return sorted(
        action for entry in claims["access"] if entry["name"] == GUN for action in entry["actions"]
    )
