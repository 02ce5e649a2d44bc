"""After a key is marked signing, the page it lands on says which repositories it joined, and
shows each as in Notary once a sync has published it there."""

import re

import pytest

from bundles.models import PublicKey
from tests.bundles.helpers import registration
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs, runner_replace
from trust.models import Job, Repository
from trust.selectors import desired_delegations
from trust.services.jobs import RunResult

pytestmark = pytest.mark.django_db


def publish_desired(job: Job) -> RunResult:
    """A sync that does what the real one does to the record: publish the desired roles."""
    published = [
        {"role": role, "key_ids": [key.tuf_key_id for key in keys]}
        for role, keys in desired_delegations(job.repository).items()
    ]
    return RunResult({"delegations": [d["role"] for d in published]}, {"delegations": published})


@pytest.fixture
def jenkins(admin):
    jenkins = make_user("jenkins")
    ci = make_team("ci", members=(jenkins,), actor=admin)
    for gun in ("registry.example.com/ci/web", "registry.example.com/ci/api"):
        Repository.objects.create(gun=gun, state=Repository.State.READY).signer_teams.add(ci)
    Repository.objects.create(gun="registry.example.com/other/app", state="ready")
    return jenkins


def joined(page: str) -> dict[str, str]:
    """GUN -> its state's badge text, from the card that says where the key joined."""
    card = page.split('id="key-repositories"', 1)[1].split("</div>", 1)[0]
    return dict(
        re.findall(r'class="mono">([^<]+)</a>\s*<span class="badge[^"]*"[^>]*>([^<]+)</span>', card)
    )


def test_a_signing_bundle_lands_on_its_repositories_pending_then_in_notary(
    client, jenkins, monkeypatch
):
    client.force_login(jenkins)
    client.post("/profile/bundle/", {"signing": "on"})

    page = client.get("/profile/").text
    key = PublicKey.objects.get(user=jenkins)
    assert f"Key <code>{key.id[:12]}</code> joined 2 repositories:" in page
    assert joined(page) == {
        "registry.example.com/ci/api": "Pending",
        "registry.example.com/ci/web": "Pending",
    }
    # The pending ones follow their sync jobs without a reload.
    syncs = Job.objects.filter(kind="sync", status="queued")
    assert syncs.count() == 2
    assert 'data-live-jobs="/api/v1/jobs/"' in page
    for job in syncs:
        assert f'data-job-id="{job.pk}" data-job-status="queued"' in page

    runner_replace(monkeypatch, Job.Kind.SYNC, publish_desired)
    run_jobs()
    page = client.get("/profile/").text
    assert joined(page) == {
        "registry.example.com/ci/api": "In Notary",
        "registry.example.com/ci/web": "In Notary",
    }
    assert "data-live-jobs" not in page  # nothing left to follow


def test_a_failed_sync_says_so_and_a_key_turned_off_shows_nothing(client, jenkins, monkeypatch):
    client.force_login(jenkins)
    client.post("/profile/bundle/", {"signing": "on"})

    def refuse(job: Job) -> RunResult:
        raise RuntimeError("Notary refused the delegation")

    runner_replace(monkeypatch, Job.Kind.SYNC, refuse)
    run_jobs()
    page = client.get("/profile/").text
    assert set(joined(page).values()) == {"Sync failed"}

    key = PublicKey.objects.get(user=jenkins)
    client.post(f"/keys/{key.id}/signing/", {"is_signing_key": "false"})
    assert 'id="key-repositories"' not in client.get("/profile/").text


def test_a_key_switched_on_later_lands_on_where_it_joined(client, jenkins, alice):
    client.force_login(jenkins)
    client.post("/profile/bundle/", {})  # unticked: a plain key
    key = PublicKey.objects.get(user=jenkins)
    assert 'id="key-repositories"' not in client.get("/profile/").text

    response = client.post(
        f"/keys/{key.id}/signing/", {"is_signing_key": "true", "next": "/profile/"}, follow=True
    )
    assert set(joined(response.text)) == {
        "registry.example.com/ci/api",
        "registry.example.com/ci/web",
    }

    # Alice, in no signing team, registers a signing key: it joined nothing, and says so.
    client.force_login(alice)
    client.post("/profile/keys/register/", {**registration(alice), "signing": "on"})
    page = client.get("/profile/").text
    assert "joined no repository: no team of" in page


def test_an_admin_marking_a_users_key_sees_it_on_the_users_page(client, admin, jenkins):
    client.force_login(jenkins)
    client.post("/profile/bundle/", {})
    key = PublicKey.objects.get(user=jenkins)
    client.force_login(admin)
    response = client.post(f"/keys/{key.id}/signing/", {"is_signing_key": "true"}, follow=True)
    assert response.request["PATH_INFO"] == "/users/jenkins/"
    assert set(joined(response.text)) == {
        "registry.example.com/ci/api",
        "registry.example.com/ci/web",
    }
