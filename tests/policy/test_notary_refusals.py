"""Notary refusing Gatehouse's own read (a 4xx other than 404): a repository's signed tags
(``policy.explanations``), Check an image and the evaluate API must each say so, never
answer with a 500, and never pass anything."""

import pytest

from policy.services import policy_update
from trust.models import Repository
from trust.notary.errors import NotaryRejected
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db


def test_notary_refusing_the_read_is_a_next_step_not_a_500(client, admin, monkeypatch):
    """A 4xx other than 404 (a 401 without challenge, a 403, a 429) is ``NotaryRejected``;
    the page caught only NotFound, InvalidMetadata and NotaryUnavailable."""
    repository, _ = repository_create(
        actor=admin, gun="registry.example.com/ci/app", signer_team_names=[]
    )
    Repository.objects.filter(pk=repository.pk).update(state=Repository.State.READY)

    def refused(gun: str):
        raise NotaryRejected("access denied", gun=gun, role="root", code="DENIED", status=403)

    monkeypatch.setattr("policy.explanations.verified_repository", refused)
    client.raise_request_exception = False
    client.force_login(admin)

    page = client.get(f"/repositories/{repository.pk}/")

    assert page.status_code == 200
    assert 'data-reason="notary_refused"' in page.text
    assert "Notary refused to give the trust data of registry.example.com/ci/app" in page.text


def test_notary_refusing_the_read_fails_every_evaluation_closed_as_a_503(
    api, client, admin, monkeypatch
):
    """Check an image, the evaluate API and admission read Notary too: a refused read is
    "nothing is verified", as an unreachable Notary is, never a 500."""
    policy_update(actor=admin, enabled=True, mode="enforced", signing_team_names=[], allow_repos=[])

    def refused(gun: str):
        raise NotaryRejected("access denied", gun=gun, role="root", code="DENIED", status=403)

    monkeypatch.setattr("policy.services.verified_repository", refused)
    client.raise_request_exception = False
    client.force_login(admin)
    image = "registry.example.com/ci/app:1.0"

    page = client.get("/content-trust/check/", {"image": image})
    answer = api(admin).post("/api/v1/policy/evaluate/", {"image": image}, format="json")

    assert page.status_code == 503
    assert "Notary refused Gatehouse&#x27;s read" in page.text
    assert answer.status_code == 503
    assert "Notary refused Gatehouse's read" in answer.json()["detail"]
