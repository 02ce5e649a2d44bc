"""The job engine, with runners of the test's own: retries, failures, their hooks, leases,
and a finished job that records what its runner did and releases its repository in one
step, never disturbing a claim another job took over."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Team
from tests.trust.helpers import runner_replace
from trust.models import Job, Repository
from trust.services import jobs
from trust.services.jobs import LOCK_RETRY_SECONDS, JobRunner, RunResult
from trust.services.repositories import repository_create
from trust.services.sync_requests import repositories_sync_request, repository_sync_request

pytestmark = pytest.mark.django_db


def test_a_job_whose_lease_ran_out_records_but_leaves_the_new_claim_alone(admin, monkeypatch):
    """The record goes out with the release; if another job holds the repository by then,
    what was published is still recorded and that job keeps its claim."""
    repository, job = repository_create(actor=admin, gun="registry.example.com/ci/app")
    other = Job.objects.create(kind="sync", repository=repository, gun=repository.gun)

    def runner(job: Job) -> RunResult:
        Repository.objects.filter(pk=job.repository_id).update(lock_job=other)  # lease taken
        return RunResult({"ok": True}, {"state": Repository.State.READY, "drift": None})

    runner_replace(monkeypatch, Job.Kind.INITIALIZE, runner)
    jobs.job_run(job_id=job.pk)

    job.refresh_from_db()
    repository.refresh_from_db()
    assert (job.status, job.result) == ("succeeded", {"ok": True})
    assert repository.state == "ready"
    assert repository.lock_job_id == other.pk


def test_a_finished_job_records_and_releases_together(admin, monkeypatch):
    repository, job = repository_create(actor=admin, gun="registry.example.com/ci/app")
    recorded = {"state": Repository.State.READY, "delegations": [{"role": "x", "key_ids": []}]}
    runner_replace(monkeypatch, Job.Kind.INITIALIZE, lambda job: RunResult({"ok": True}, recorded))
    jobs.job_run(job_id=job.pk)

    repository.refresh_from_db()
    assert (repository.state, repository.delegations) == ("ready", recorded["delegations"])
    assert (repository.lock_job_id, repository.lock_expires_at) == (None, None)
    job.refresh_from_db()
    assert job.status == "succeeded"


class Scripted(JobRunner):
    """Does what the test scripts, one outcome per run; remembers the failures it was told of."""

    kind = Job.Kind.INITIALIZE
    service = "The test service"
    transient_errors = (ConnectionError,)
    permanent_errors = (LookupError,)

    def __init__(self, *outcomes: RunResult | Exception) -> None:
        self.outcomes = list(outcomes)
        self.runs = 0
        self.failed_jobs: list[int] = []

    def run(self, job: Job) -> RunResult:
        self.runs += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def failed(self, job: Job) -> None:
        self.failed_jobs.append(job.pk)


@pytest.fixture
def scripted(monkeypatch):
    def install(*outcomes: RunResult | Exception) -> Scripted:
        runner = Scripted(*outcomes)
        monkeypatch.setitem(jobs.RUNNERS, Job.Kind.INITIALIZE, runner)
        return runner

    return install


@pytest.fixture
def queued(admin):
    _, job = repository_create(actor=admin, gun="registry.example.com/ci/app")
    return job


def test_a_transient_error_is_retried_with_backoff_then_succeeds(queued, scripted, settings):
    settings.GATEHOUSE_JOB_BACKOFF_SECONDS = 2
    runner = scripted(ConnectionError("refused"), ConnectionError("refused"), RunResult({}))

    assert jobs.job_run(job_id=queued.pk).retry_in == 2
    queued.refresh_from_db()
    assert queued.status == "running"
    assert queued.error.startswith("The test service unavailable (attempt 1 of ")
    assert Repository.objects.get(pk=queued.repository_id).lock_job is None  # released
    assert jobs.job_run(job_id=queued.pk).retry_in == 4  # doubled
    assert jobs.job_run(job_id=queued.pk) == jobs.DONE

    queued.refresh_from_db()
    assert (queued.status, queued.attempts, runner.runs) == ("succeeded", 3, 3)
    assert runner.failed_jobs == []


def test_a_transient_error_fails_the_job_after_the_last_attempt(queued, scripted, settings):
    settings.GATEHOUSE_JOB_MAX_ATTEMPTS = 2
    runner = scripted(ConnectionError("refused"), ConnectionError("still refused"))

    jobs.job_run(job_id=queued.pk)
    assert jobs.job_run(job_id=queued.pk) == jobs.DONE

    queued.refresh_from_db()
    assert queued.status == "failed"
    assert queued.error == "The test service stayed unavailable after 2 attempts: still refused"
    assert runner.failed_jobs == [queued.pk]


def test_a_permanent_error_fails_at_once_with_its_message(queued, scripted):
    runner = scripted(LookupError("no such thing"))

    assert jobs.job_run(job_id=queued.pk) == jobs.DONE

    queued.refresh_from_db()
    assert (queued.status, queued.error, queued.attempts) == ("failed", "no such thing", 1)
    assert runner.failed_jobs == [queued.pk]


def test_a_bug_fails_the_job_without_retrying_and_logs_it(queued, scripted, caplog):
    runner = scripted(ZeroDivisionError("oops"))

    assert jobs.job_run(job_id=queued.pk) == jobs.DONE

    queued.refresh_from_db()
    assert (queued.status, queued.error) == ("failed", jobs.INTERNAL_ERROR)
    assert runner.failed_jobs == [queued.pk]
    assert any(record.exc_info for record in caplog.records if "crashed" in record.getMessage())


def test_a_finished_job_never_runs_again(queued, scripted):
    runner = scripted(RunResult({"first": True}))
    jobs.job_run(job_id=queued.pk)

    assert jobs.job_run(job_id=queued.pk) == jobs.DONE  # a duplicate message
    queued.refresh_from_db()
    assert (queued.status, queued.result, runner.runs) == ("succeeded", {"first": True}, 1)


def test_a_repository_held_by_another_job_makes_this_one_wait(queued, scripted):
    runner = scripted(RunResult({}))
    holder = Job.objects.create(kind="sync", repository_id=queued.repository_id, gun=queued.gun)
    Repository.objects.filter(pk=queued.repository_id).update(lock_job=holder)

    assert jobs.job_run(job_id=queued.pk).retry_in == LOCK_RETRY_SECONDS
    queued.refresh_from_db()
    assert (queued.status, runner.runs) == ("queued", 0)


def test_a_job_of_a_kind_no_runner_does_fails_and_says_so(queued, monkeypatch):
    monkeypatch.delitem(jobs.RUNNERS, Job.Kind.INITIALIZE)

    assert jobs.job_run(job_id=queued.pk) == jobs.DONE
    queued.refresh_from_db()
    assert (queued.status, queued.error) == ("failed", "No runner does jobs of kind 'initialize'.")


def test_a_failed_initialisation_marks_its_repository_failed(queued, settings):
    """The Notary runners' own hook: a repository that never became ready says so."""
    settings.NOTARY_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings.GATEHOUSE_JOB_MAX_ATTEMPTS = 1

    jobs.job_run(job_id=queued.pk)

    queued.refresh_from_db()
    assert queued.status == "failed"
    assert queued.error.startswith("Notary stayed unavailable after 1 attempts")
    assert Repository.objects.get(pk=queued.repository_id).state == "failed"


def history(job: Job) -> list[tuple[str, int, str]]:
    return [(event.status, event.attempt, event.detail) for event in job.events.all()]


def test_the_history_records_each_step_of_a_retried_success(queued, scripted, settings):
    settings.GATEHOUSE_JOB_BACKOFF_SECONDS = 2
    settings.GATEHOUSE_JOB_MAX_ATTEMPTS = 5
    scripted(ConnectionError("refused"), RunResult({}))

    jobs.job_run(job_id=queued.pk)
    jobs.job_run(job_id=queued.pk)

    queued.refresh_from_db()
    retry = "The test service unavailable (attempt 1 of 5), retrying in 2 s: refused"
    assert history(queued) == [
        ("queued", 0, ""),
        ("started", 1, ""),
        ("retrying", 1, retry),
        ("started", 2, ""),
        ("succeeded", 2, ""),
    ]
    queued_at, *_, finished_at = (event.at for event in queued.events.all())
    assert (queued_at, finished_at) == (queued.created_at, queued.finished_at)
    assert queued.events.get(status="started", attempt=1).at == queued.started_at


def test_the_history_records_the_failure_with_its_error(queued, scripted, settings):
    settings.GATEHOUSE_JOB_MAX_ATTEMPTS = 2
    scripted(ConnectionError("refused"), ConnectionError("still refused"))

    jobs.job_run(job_id=queued.pk)
    jobs.job_run(job_id=queued.pk)

    failure = "The test service stayed unavailable after 2 attempts: still refused"
    assert [step[:2] for step in history(queued)] == [
        ("queued", 0),
        ("started", 1),
        ("retrying", 1),
        ("started", 2),
        ("failed", 2),
    ]
    assert history(queued)[-1] == ("failed", 2, failure)


def test_a_permanent_failure_and_a_duplicate_message_add_no_more_steps(queued, scripted):
    scripted(LookupError("no such thing"))

    jobs.job_run(job_id=queued.pk)
    jobs.job_run(job_id=queued.pk)  # a duplicate message: the job is finished

    assert history(queued) == [
        ("queued", 0, ""),
        ("started", 1, ""),
        ("failed", 1, "no such thing"),
    ]


def test_a_job_waiting_for_its_repository_records_no_step(queued, scripted):
    scripted(RunResult({}))
    holder = Job.objects.create(kind="sync", repository_id=queued.repository_id, gun=queued.gun)
    Repository.objects.filter(pk=queued.repository_id).update(lock_job=holder)

    jobs.job_run(job_id=queued.pk)

    assert history(queued) == [("queued", 0, "")]


def test_a_job_sent_again_by_the_sweep_says_so(queued):
    Job.objects.filter(pk=queued.pk).update(enqueued_at=timezone.now() - dt.timedelta(hours=1))

    assert jobs.jobs_requeue_stale(older_than=dt.timedelta(minutes=5)) == 1

    assert history(queued) == [("queued", 0, ""), ("requeued", 0, "")]


def test_syncs_asked_for_in_bulk_are_queued_once_each(admin):
    made = [
        repository_create(actor=admin, gun=f"registry.example.com/ci/app{n}")[0] for n in range(3)
    ]

    assert repositories_sync_request(repositories=made, actor=admin, cause="team changed") == 3
    assert repositories_sync_request(repositories=made, actor=admin, cause="again") == 0

    syncs = Job.objects.filter(kind="sync")
    assert [history(job) for job in syncs] == [[("queued", 0, "")]] * 3


@pytest.mark.django_db(transaction=True)
def test_a_sync_never_starts_between_a_request_it_absorbs_and_that_requests_commit(
    admin, monkeypatch
):
    """A membership change asks for a sync in its own transaction; when a queued sync
    absorbs the request, a worker must not start that sync before the change commits, or
    it reads the state from before and no later job follows (Notary is left out of step
    until the next drift check)."""
    repository = Repository.objects.create(gun="registry.example.com/race/app", state="ready")
    queued = Job.objects.create(kind="sync", repository=repository, gun=repository.gun)
    seen: list[bool] = []

    def runner(job: Job) -> RunResult:
        seen.append(Team.objects.filter(name="late").exists())
        return RunResult({"ok": True}, {"state": Repository.State.READY, "drift": None})

    runner_replace(monkeypatch, Job.Kind.SYNC, runner)
    absorbed, go = threading.Event(), threading.Event()

    def change() -> None:
        try:
            with transaction.atomic():
                Team.objects.create(name="late")
                assert (
                    repository_sync_request(repository=repository, actor=None, cause="t") == queued
                )
                absorbed.set()
                go.wait(10)
        finally:
            connection.close()

    def work() -> None:
        try:
            jobs.job_run(job_id=queued.pk)
        finally:
            connection.close()

    changer = threading.Thread(target=change)
    changer.start()
    assert absorbed.wait(10)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "the sync started before the change it absorbed committed"
    go.set()
    changer.join(10)
    worker.join(10)
    assert seen == [True]
