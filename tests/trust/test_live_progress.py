"""Long work made visible in the console: the progress of a bulk creation, which the page
follows without a reload, and the page of one job, with its history and timings. Only what
the viewer may see is counted or shown."""

import pytest

from tests.factories import make_team, make_user
from tests.trust.helpers import runner_replace
from trust.forms import id_ranges
from trust.models import Job, Repository
from trust.services import jobs
from trust.services.jobs import RunResult
from trust.services.repositories import repositories_create_bulk

pytestmark = pytest.mark.django_db

PROGRESS = "/repositories/progress/"


@pytest.fixture
def batch(admin, alice):
    """Three repositories made in one bulk creation, signed by ci (alice's team), and one
    signed by ops, made with them."""
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", members=(make_user("bob"),), actor=admin)
    ci = repositories_create_bulk(
        actor=admin,
        guns=[f"registry.example.com/ci/app{n}" for n in range(3)],
        signer_team_names=["ci"],
    )
    ops = repositories_create_bulk(
        actor=admin, guns=["registry.example.com/ops/db"], signer_team_names=["ops"]
    )
    return [repository for repository, _ in ci.created + ops.created]


def finish(repository: Repository, state: str, error: str = "") -> Job:
    """The repository's initialisation ended as ``state`` says, as its runner records it."""
    Repository.objects.filter(pk=repository.pk).update(state=state)
    job = Job.objects.get(repository=repository)
    status = "succeeded" if state == "ready" else "failed"
    Job.objects.filter(pk=job.pk).update(status=status, error=error)
    return job


def test_ids_travel_as_ranges():
    assert id_ranges([9, 3, 4, 5, 11, 12]) == "3-5,9,11-12"
    assert id_ranges([7]) == "7"


def test_progress_counts_the_batch_and_links_the_failures(client, admin, batch):
    first, second, third, other = batch
    finish(first, "ready")
    failed_job = finish(second, "failed", "Notary refused: no such role")
    client.force_login(admin)

    body = client.get(PROGRESS, {"batch": id_ranges(r.pk for r in batch)}).json()

    assert body["batch"] == {
        "total": 4,
        "ready": 1,
        "failed": 1,
        "pending": 2,
        "done": False,
        "text": "1 of 4 ready, 1 failed",
        "failures": [
            {
                "gun": second.gun,
                "url": f"/repositories/{second.pk}/",
                "error": "Notary refused: no such role",
                "job_id": failed_job.pk,
                "job_url": f"/jobs/{failed_job.pk}/",
            }
        ],
    }

    finish(third, "ready")
    finish(other, "ready")
    done = client.get(PROGRESS, {"batch": id_ranges(r.pk for r in batch)}).json()["batch"]
    assert (done["text"], done["done"]) == ("3 of 4 ready, 1 failed", True)


def test_progress_gives_the_state_of_the_rows_asked_for(client, admin, batch):
    first, second, *_ = batch
    finish(first, "ready")
    client.force_login(admin)

    body = client.get(PROGRESS, {"ids": f"{first.pk},{second.pk}"}).json()

    assert body == {
        "batch": None,
        "repositories": {
            str(first.pk): {"state": "ready", "label": "Ready"},
            str(second.pk): {"state": "pending", "label": "Pending"},
        },
    }


def test_progress_counts_only_what_the_viewer_may_see(client, alice, batch):
    other = batch[-1]
    client.force_login(alice)

    body = client.get(
        PROGRESS, {"batch": id_ranges(r.pk for r in batch), "ids": str(other.pk)}
    ).json()

    assert body["batch"]["text"] == "0 of 3 ready, 0 failed"  # not ops' repository
    assert body["repositories"] == {}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"batch": "1-x"}, "batch", "Give ids as numbers and ranges, such as 3-5,9."),
        ({"ids": "9-3"}, "ids", "Give ids as numbers and ranges, such as 3-5,9."),
        ({"batch": "1-100000"}, "batch", "Give at most 1000 ids."),
        ({"batch": ",".join(["1-999", "5-6"])}, "batch", "Give at most 1000 ids."),
    ],
)
def test_progress_refuses_bad_ids_naming_the_field(client, admin, query, field, message):
    client.force_login(admin)

    response = client.get(PROGRESS, query)

    assert response.status_code == 400
    assert response.json() == {"errors": {field: [message]}}


def test_progress_is_for_signed_in_users(client):
    response = client.get(PROGRESS, {"batch": "1"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_list_shows_the_batch_progress_without_javascript(client, admin, batch):
    finish(batch[0], "failed", "Notary unreachable")
    client.force_login(admin)

    response = client.get("/repositories/", {"batch": id_ranges(r.pk for r in batch)})

    text = response.text
    assert '<strong id="batch-counter">0 of 4 ready, 1 failed</strong>' in text
    assert "· 3 pending" in text
    assert f'<a class="mono" href="/repositories/{batch[0].pk}/">{batch[0].gun}</a>' in text
    assert "Notary unreachable" in text
    assert f'data-repository-id="{batch[1].pk}"' in text
    assert 'data-repository-state="pending"' in text
    assert 'data-live-repositories="/repositories/progress/"' in text


def test_a_bad_batch_in_the_list_address_shows_the_list_without_progress(client, admin, batch):
    client.force_login(admin)

    response = client.get("/repositories/", {"batch": "nonsense"})

    assert response.status_code == 200
    assert 'id="batch-counter"' not in response.text


# --- The job page -------------------------------------------------------------------------


def test_the_job_page_shows_history_cause_repository_and_timings(
    client, admin, batch, monkeypatch, settings
):
    settings.GATEHOUSE_JOB_BACKOFF_SECONDS = 1
    outcomes = [ConnectionError("connection refused"), RunResult({})]

    def run(job: Job) -> RunResult:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    runner_replace(monkeypatch, Job.Kind.INITIALIZE, run)
    monkeypatch.setattr(jobs.RUNNERS[Job.Kind.INITIALIZE], "transient_errors", (ConnectionError,))
    repository = batch[0]
    job = Job.objects.get(repository=repository)
    jobs.job_run(job_id=job.pk)
    jobs.job_run(job_id=job.pk)
    client.force_login(admin)

    response = client.get(f"/jobs/{job.pk}/")

    assert response.status_code == 200
    text = response.text
    assert f"Job {job.pk}:" in text
    assert "bulk creation" in text
    assert '<span class="mono">root</span>' in text
    assert f'<a class="mono" href="/repositories/{repository.pk}/">{repository.gun}</a>' in text
    assert [event.status for event in response.context["events"]] == [
        "queued",
        "started",
        "retrying",
        "started",
        "succeeded",
    ]
    assert "The replacement unavailable (attempt 1 of" in text
    assert '<dd id="job-attempts">2</dd>' in text
    for label in ("Waited", "Ran", "In all"):
        assert f"<dt>{label}</dt>" in text
    assert response.context["total"].endswith(" s")


def test_the_jobs_list_links_each_job_and_follows_them_live(client, admin, batch):
    client.force_login(admin)

    response = client.get("/jobs/")

    assert 'data-live-jobs="/api/v1/jobs/"' in response.text
    for repository in batch:
        job = Job.objects.get(repository=repository)
        assert f'href="/jobs/{job.pk}/"' in response.text
        assert f'data-job-id="{job.pk}"' in response.text


def test_a_member_sees_the_jobs_of_their_repositories_and_no_other(client, alice, batch):
    mine, theirs = Job.objects.get(repository=batch[0]), Job.objects.get(repository=batch[-1])
    client.force_login(alice)

    assert client.get(f"/jobs/{mine.pk}/").status_code == 200
    assert client.get(f"/jobs/{theirs.pk}/").status_code == 404
    assert client.get("/jobs/999999/").status_code == 404


def test_the_job_page_is_for_signed_in_users(client, batch):
    job = Job.objects.first()

    response = client.get(f"/jobs/{job.pk}/")

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/jobs/{job.pk}/"
