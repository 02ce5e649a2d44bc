"""A repository can always be deleted, whatever became of it: initialisation failed, never
run, Notary knows nothing of it, or its GUN is one no request can address. And a failed
repository gets no syncs it cannot carry out."""

import pytest

from accounts.services import team_member_add
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs
from trust.models import Job, Repository
from trust.notary.errors import NotFound
from trust.services import runners
from trust.services.jobs import job_run
from trust.services.repositories import repository_create, repository_delete
from trust.services.sync_requests import repository_sync_request

pytestmark = pytest.mark.django_db


def failed(repository: Repository) -> Repository:
    """As a failed initialisation leaves it: its job failed, the repository failed."""
    Job.objects.filter(repository=repository, kind=Job.Kind.INITIALIZE).update(
        status=Job.Status.FAILED, error="NOTARY: refused"
    )
    Repository.objects.filter(pk=repository.pk).update(state=Repository.State.FAILED)
    repository.refresh_from_db()
    return repository


class NoNotary:
    """A Notary client that must not be used."""

    def __getattr__(self, name: str):
        raise AssertionError(f"Notary was asked to {name}")


@pytest.mark.notary
def test_a_repository_whose_initialisation_failed_is_deleted(on_notary, api, admin, notary_gun):
    repository = failed(repository_create(actor=admin, gun=notary_gun)[0])
    response = api(admin).delete(f"/api/v1/repositories/{repository.pk}/")
    assert response.status_code == 202, response.content
    run_jobs()
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert (job.status, job.error) == ("succeeded", "")
    assert job.result["deleted"] is True
    assert not Repository.objects.filter(pk=repository.pk).exists()


@pytest.mark.notary
def test_a_repository_deleted_before_its_initialisation_ran_is_deleted(
    on_notary, admin, notary_gun
):
    repository, initialize = repository_create(actor=admin, gun=notary_gun)
    delete = repository_delete(actor=admin, repository=repository)
    job_run(job_id=delete.pk)  # before the initialisation: Notary has nothing of it
    delete.refresh_from_db()
    assert (delete.status, delete.error) == ("succeeded", "")
    assert not Repository.objects.filter(pk=repository.pk).exists()
    job_run(job_id=initialize.pk)
    initialize.refresh_from_db()
    assert (initialize.status, initialize.error) == ("failed", "The repository no longer exists.")


def test_notary_answering_not_found_counts_as_deleted(admin, monkeypatch):
    class Gone:
        def delete(self, gun: str) -> None:
            raise NotFound("unknown repository", gun=gun, code="METADATA_NOT_FOUND", status=404)

    monkeypatch.setattr(runners, "notary_client", Gone)
    monkeypatch.setattr(runners, "repository_forgotten", lambda **kwargs: None)
    repository = failed(repository_create(actor=admin, gun="registry.example.com/ci/gone")[0])
    job = repository_delete(actor=admin, repository=repository)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == ("succeeded", "")
    assert job.result == {"deleted": True, "notary": "not found: nothing to delete"}
    assert not Repository.objects.filter(pk=repository.pk).exists()


@pytest.mark.notary
@pytest.mark.parametrize("gun", ["../../etc/passwd", "registry.example.com/../x", "a/./b"])
def test_a_gun_no_request_can_address_is_deleted_without_notary(on_notary, api, admin, gun):
    """Stored before GUNs followed Docker's grammar: Notary answered its every request with
    a redirect, so its jobs failed for good, deletion included."""
    repository = Repository.objects.create(gun=gun, state=Repository.State.FAILED)
    response = api(admin).delete(f"/api/v1/repositories/{repository.pk}/")
    assert response.status_code == 202, response.content
    run_jobs()
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert (job.status, job.error) == ("succeeded", "")
    assert job.result["notary"].startswith("skipped")
    assert not Repository.objects.filter(pk=repository.pk).exists()


@pytest.mark.notary
def test_a_short_gun_an_earlier_version_stored_is_deleted_on_notary(on_notary, admin):
    """``app`` is a name Notary serves as it is; its row and its trust data both go."""
    repository = Repository.objects.create(gun="app", state=Repository.State.READY)
    job = repository_delete(actor=admin, repository=repository)
    run_jobs()
    job.refresh_from_db()
    assert (job.status, job.error) == ("succeeded", "")
    assert job.result["notary"] == "deleted"
    assert not Repository.objects.filter(pk=repository.pk).exists()


# --- No doomed syncs ----------------------------------------------------------------------


def test_a_team_change_queues_no_sync_for_a_failed_repository(admin):
    team = make_team("ci", actor=admin)
    gone, _ = repository_create(
        actor=admin, gun="registry.example.com/ci/failed", signer_team_names=["ci"]
    )
    failed(gone)
    pending, _ = repository_create(
        actor=admin, gun="registry.example.com/ci/pending", signer_team_names=["ci"]
    )
    ready, _ = repository_create(
        actor=admin, gun="registry.example.com/ci/ready", signer_team_names=["ci"]
    )
    Repository.objects.filter(pk=ready.pk).update(state=Repository.State.READY)

    team_member_add(actor=admin, team=team, user=make_user("dev"))

    synced = set(Job.objects.filter(kind=Job.Kind.SYNC).values_list("repository_id", flat=True))
    assert synced == {pending.pk, ready.pk}
    assert gone.pk not in synced


@pytest.mark.parametrize("state", [Repository.State.FAILED, Repository.State.PENDING])
def test_a_sync_of_a_repository_never_initialised_does_nothing(admin, monkeypatch, state):
    """Its initialisation, still to run, publishes the delegations as they are then; a failed
    one leaves nothing on Notary to bring in step."""
    monkeypatch.setattr(runners, "notary_client", NoNotary)
    repository, _ = repository_create(actor=admin, gun="registry.example.com/ci/new")
    Job.objects.filter(repository=repository).update(status=Job.Status.FAILED)
    Repository.objects.filter(pk=repository.pk).update(state=state)
    job = repository_sync_request(repository=repository, actor=admin, cause="asked", delay=0)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == ("succeeded", "")
    assert job.result == {"published": False, "skipped": f"the repository is {state}"}
