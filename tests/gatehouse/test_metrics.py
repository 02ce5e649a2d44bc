"""``GET /metrics``: scraped as Prometheus would, with the token, and read with
prometheus_client's own parser; each signal an operator watches moves when its event
happens, and nobody without the token (or an admin's session) reads them."""

import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from policy.services import policy_update
from tests.factories import make_team
from tests.trust.helpers import run_jobs
from trust import trust_data
from trust.models import Job, Repository
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

TOKEN = secrets.token_hex(32)
ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "policy" / "fixtures"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metrics_token(settings) -> str:
    settings.GATEHOUSE_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token: str = TOKEN) -> Samples:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def notary_down(settings):
    """A Notary URL nothing listens on: every request is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.NOTARY_URL = f"http://127.0.0.1:{port}"
    trust_data.forget()
    yield
    trust_data.forget()


@pytest.fixture
def enforced(admin):
    make_team("ci", actor=admin)
    policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["registry.example.com/allowed/*"],
    )


# --- Access -------------------------------------------------------------------------------


def test_without_a_token_configured_only_a_signed_in_admin_reads_them(settings, admin, alice):
    settings.GATEHOUSE_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    user = Client()
    user.force_login(alice)
    assert user.get("/metrics").status_code == 404
    console = Client()
    console.force_login(admin)
    answer = console.get("/metrics")
    assert answer.status_code == 200
    assert b"# TYPE gatehouse_jobs gauge" in answer.content
    assert "no-store" in answer["Cache-Control"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer é"],
)
def test_without_the_token_the_metrics_are_refused(metrics_token, alice, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    answer = Client().get("/metrics", **headers)
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"gatehouse_" not in answer.content
    user = Client()
    user.force_login(alice)
    assert user.get("/metrics", **headers).status_code == 401


def test_with_the_token_they_are_read_and_name_no_secret(metrics_token, admin):
    answer = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    assert TOKEN.encode() not in answer.content
    assert Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    samples = scrape()
    # Every kind and status is there from the start, so an alert on them never lacks a series.
    for kind in Job.Kind.values:
        for status in Job.Status.values:
            assert (("gatehouse_jobs", frozenset({"kind": kind, "status": status}.items()))) in (
                samples
            )
    assert value(samples, "gatehouse_job_queue_age_seconds") == 0
    assert ("gatehouse_login_failures_total", frozenset()) in samples


# --- What moves them ----------------------------------------------------------------------


@pytest.mark.notary
def test_evaluations_count_by_decision_with_their_latency(
    settings, metrics_token, admin, api, enforced, notary_server, notary_gun
):
    settings.NOTARY_URL = notary_server.url
    trust_data.forget()
    client = api(admin)
    before = scrape()
    answer = client.post(
        "/api/v1/policy/evaluate/", {"image": "registry.example.com/allowed/a:1"}, format="json"
    )
    assert answer.json()["decision"] == "allowed"
    answer = client.post("/api/v1/policy/evaluate/", {"image": f"{notary_gun}:1.0"}, format="json")
    assert answer.json()["decision"] == "denied"
    after = scrape()
    assert moved(before, after, "gatehouse_evaluations_total", decision="allowed") == 1
    assert moved(before, after, "gatehouse_evaluations_total", decision="denied") == 1
    assert moved(before, after, "gatehouse_evaluation_duration_seconds_count") == 2
    assert moved(before, after, "gatehouse_evaluation_duration_seconds_sum") > 0
    # The denial read Notary: its request is timed, and its 404 counted.
    assert moved(before, after, "gatehouse_notary_request_duration_seconds_count", method="GET")
    assert moved(before, after, "gatehouse_notary_request_errors_total", error="not_found")


def test_an_evaluation_without_notary_counts_as_such(
    metrics_token, admin, api, enforced, notary_down
):
    before = scrape()
    answer = api(admin).post(
        "/api/v1/policy/evaluate/", {"image": "registry.example.com/a/b:1"}, format="json"
    )
    assert answer.status_code == 503
    after = scrape()
    assert moved(before, after, "gatehouse_evaluations_total", decision="notary_unavailable") == 1
    assert moved(before, after, "gatehouse_notary_request_errors_total", error="unavailable") >= 1


def _review(image: str, uid: str) -> dict:
    document = json.loads((FIXTURES / "pod.json").read_text())
    document["request"]["uid"] = uid
    spec = document["request"]["object"]["spec"]
    spec["containers"] = [{"name": "web", "image": image}]
    spec.pop("initContainers", None)
    return document


def test_admission_reviews_count_allowed_denied_and_failing_closed(
    metrics_token, admin, api, enforced, notary_down
):
    from policy.services import admission_service_account

    _, raw_token, _, _ = admission_service_account(username="kube-apiserver")
    webhook = Client(HTTP_AUTHORIZATION=f"Bearer {raw_token}")

    def review(document: dict) -> bool:
        answer = webhook.post(
            "/api/v1/admission/validate/", json.dumps(document), content_type="application/json"
        )
        assert answer.status_code == 200, answer.content
        return answer.json()["response"]["allowed"]

    before = scrape()
    assert review(_review("registry.example.com/allowed/web:1", "a")) is True
    assert review(_review("bad image name", "b")) is False
    assert review(_review("registry.example.com/shop/web:1", "c")) is False  # Notary is down
    after = scrape()
    reviews = "gatehouse_admission_reviews_total"
    assert (
        moved(before, after, reviews, webhook="validate", decision="allowed", reason="evaluated")
        == 1
    )
    assert (
        moved(before, after, reviews, webhook="validate", decision="denied", reason="evaluated")
        == 1
    )
    failing_closed = {"webhook": "validate", "decision": "denied", "reason": "notary_unavailable"}
    assert moved(before, after, reviews, **failing_closed) == 1
    assert moved(before, after, "gatehouse_admission_review_duration_seconds_count") == 3
    # Admission's evaluations are counted as reviews, not again as evaluations.
    assert not any(
        moved(before, after, "gatehouse_evaluations_total", decision=decision)
        for decision in ("allowed", "denied", "notary_unavailable")
    )
    assert moved(before, after, "gatehouse_notary_request_errors_total", error="unavailable") >= 1


def test_jobs_by_kind_and_status_queue_age_and_retries(settings, metrics_token, admin, notary_down):
    settings.GATEHOUSE_JOB_MAX_ATTEMPTS = 2
    before = scrape()
    repository_create(actor=admin, gun="registry.example.com/ci/app", signer_team_names=[])
    Job.objects.update(enqueued_at=timezone.now() - dt.timedelta(hours=1))
    queued = scrape()
    assert moved(before, queued, "gatehouse_jobs", kind="initialize", status="queued") == 1
    assert value(queued, "gatehouse_job_queue_age_seconds") >= 3600

    (job,) = run_jobs()  # Notary is down: retried once, then failed
    assert (job.status, job.attempts) == ("failed", 2)
    failed = scrape()
    assert moved(before, failed, "gatehouse_jobs", kind="initialize", status="failed") == 1
    assert moved(before, failed, "gatehouse_jobs", kind="initialize", status="queued") == 0
    assert moved(before, failed, "gatehouse_job_retries_total", kind="initialize") == 1
    assert value(failed, "gatehouse_job_queue_age_seconds") == 0


def test_repositories_with_drift_are_counted(metrics_token):
    repository = Repository.objects.create(gun="registry.example.com/ci/app", state="ready")
    before = scrape()
    Repository.objects.filter(pk=repository.pk).update(
        drift={"missing": {"targets/releases": ["abc"]}, "unexpected": {}}
    )
    after = scrape()
    assert moved(before, after, "gatehouse_repositories_drifted") == 1


def test_login_failures_and_the_lockout_they_cause(settings, metrics_token, alice):
    settings.GATEHOUSE_LOGIN_MAX_FAILURES = 2
    before = scrape()
    for _ in range(3):  # two wrong passwords lock the account; the third is not checked
        Client().post("/login/", {"username": "alice", "password": "wrong"})
    after = scrape()
    assert moved(before, after, "gatehouse_login_failures_total") == 2
    assert moved(before, after, "gatehouse_login_lockouts_total", scope="user") == 1
    assert moved(before, after, "gatehouse_login_lockouts_total", scope="address") == 0


def test_in_multiprocess_mode_a_scrape_sums_every_process(tmp_path):
    """Two processes (gunicorn workers, or the Celery worker) count; a third, scraped, sums."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from accounts.metrics import LOGIN_FAILURES; LOGIN_FAILURES.inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, cwd=ROOT, check=True, timeout=60)
    read = textwrap.dedent(
        """
        import django
        django.setup()
        from prometheus_client import generate_latest
        from gatehouse.metrics import process_metrics
        print(generate_latest(process_metrics()).decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", read],
        env={**env, "DJANGO_SETTINGS_MODULE": "gatehouse.settings"},
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(out)
        for sample in family.samples
        if not sample.labels
    }
    assert samples["gatehouse_login_failures_total"] == 2


def test_a_short_metrics_token_refuses_to_start(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **clean,
            "GATEHOUSE_DEBUG": "1",
            "GATEHOUSE_VAR_DIR": str(tmp_path),
            "GATEHOUSE_METRICS_TOKEN": "too-short",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "GATEHOUSE_METRICS_TOKEN must be at least 32 characters" in result.stderr
