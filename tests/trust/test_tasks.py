"""The Celery path end to end: the API, a real worker process, Redis and notary-server."""

import datetime as dt
import os
import signal
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from accounts.services import team_member_add, team_member_remove
from bundles.services import public_key_revoke
from tests.conftest import require
from tests.factories import make_team, make_user
from tests.trust.conftest import start_worker, stop_worker
from tests.trust.helpers import cli_delegations, settled, signing_key_of, wait_until
from trust.models import Job, Repository
from trust.selectors import desired_delegations
from trust.services.jobs import jobs_requeue_stale

pytestmark = [pytest.mark.notary, pytest.mark.django_db(transaction=True)]


def create_repository(api, admin, gun: str, teams: list[str]) -> dict:
    response = api(admin).post(
        "/api/v1/repositories/", {"gun": gun, "signer_teams": teams}, format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["job"]["url"].endswith(f"/api/v1/jobs/{response.json()['job']['id']}/")
    return response.json()


def ready(gun: str) -> bool:
    return Repository.objects.filter(gun=gun, state="ready").exists()


def test_seed_scenario_through_a_real_worker(celery_worker, api, admin, notary_cli, notary_gun):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)

    created = create_repository(api, admin, notary_gun, ["ci"])
    assert created["state"] == "pending"
    wait_until(lambda: ready(notary_gun) and settled(), what="the repository to be ready")

    assert cli_delegations(notary_cli, notary_gun) == {
        "targets/releases": {key.id},
        "targets/jenkins": {key.id},
    }
    detail = api(admin).get(f"/api/v1/repositories/{created['id']}/").json()
    assert detail["state"] == "ready"
    assert detail["latest_job"]["status"] == "succeeded"
    assert {d["role"] for d in detail["delegations"]} == {"targets/releases", "targets/jenkins"}
    assert detail["delegations"][0]["keys"][0]["username"] == "jenkins"


def test_changes_reach_notary_and_remaining_signers_can_still_sign(
    celery_worker, api, admin, notary_cli, notary_cli_in, notary_gun, tmp_path
):
    jenkins, moby, lee = make_user("jenkins"), make_user("moby"), make_user("lee")
    jenkins_key, jenkins_pem = signing_key_of(jenkins)
    _, moby_pem = signing_key_of(moby)
    lee_key, _ = signing_key_of(lee)
    ci = make_team("ci", members=(jenkins, moby), actor=admin)
    create_repository(api, admin, notary_gun, ["ci"])
    wait_until(lambda: ready(notary_gun) and settled(), what="the repository to be ready")

    jenkins_dir, moby_dir = tmp_path / "jenkins", tmp_path / "moby"
    for trust_dir, pem in ((jenkins_dir, jenkins_pem), (moby_dir, moby_pem)):
        (tmp_path / "key.pem").write_bytes(pem)
        notary_cli_in(trust_dir, "key", "import", str(tmp_path / "key.pem"))
    digest = "a" * 64
    notary_cli_in(
        moby_dir,
        "addhash",
        notary_gun,
        "v0.9",
        "10",
        "--sha256",
        digest,
        "-r",
        "targets/releases",
        "-p",
    )
    notary_cli_in(
        jenkins_dir,
        "addhash",
        notary_gun,
        "v1.0",
        "12",
        "--sha256",
        digest,
        "-r",
        "targets/releases",
        "-p",
    )

    team_member_remove(actor=admin, team=ci, user=jenkins)
    wait_until(
        lambda: settled() and "targets/jenkins" not in cli_delegations(notary_cli, notary_gun),
        what="jenkins' role and key to leave",
    )
    assert jenkins_key.id not in set().union(*cli_delegations(notary_cli, notary_gun).values())

    notary_cli_in(
        moby_dir,
        "addhash",
        notary_gun,
        "v2.0",
        "12",
        "--sha256",
        digest,
        "-r",
        "targets/releases",
        "-p",
    )
    listed = notary_cli("list", notary_gun, fresh=True).stdout
    assert "v2.0" in listed

    team_member_add(actor=admin, team=ci, user=lee)
    wait_until(
        lambda: (
            settled() and cli_delegations(notary_cli, notary_gun).get("targets/lee") == {lee_key.id}
        ),
        what="lee's key to arrive",
    )
    public_key_revoke(actor=lee, key=lee_key)
    wait_until(
        lambda: settled() and "targets/lee" not in cli_delegations(notary_cli, notary_gun),
        what="lee's revoked key to leave",
    )
    assert not Job.objects.filter(status="failed").exists()


def test_concurrent_membership_changes_converge(celery_worker, api, admin, notary_cli):
    people = [make_user(f"dev{n}") for n in range(10)]
    for person in people:
        signing_key_of(person)
    make_team("ci", members=tuple(people[:5]), actor=admin)
    guns = [f"test.gatehouse/burst-{n}-{connection.settings_dict['NAME']}" for n in range(5)]
    for gun in guns:
        create_repository(api, admin, gun, ["ci"])
    wait_until(lambda: all(ready(g) for g in guns) and settled(), what="5 repositories")

    changes = [("add", p) for p in people[5:]] + [("remove", p) for p in people[:5]]
    changes += [("add", p) for p in people[:5]] + [("remove", p) for p in people[5:]]
    assert len(changes) == 20

    outcomes = []

    def change(kind: str, person) -> None:
        try:
            client = api(admin)
            path = f"/api/v1/teams/ci/members/{person.username}/"
            response = client.put(path) if kind == "add" else client.delete(path)
            outcomes.append(response.status_code)
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=change, args=item) for item in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 20
    assert set(outcomes) <= {200, 201, 204, 404}  # 404: removed by a concurrent request first
    wait_until(settled, what="the syncs to settle", timeout=120)

    for gun in guns:
        repository = Repository.objects.get(gun=gun)
        want = {
            role: {k.id for k in keys} for role, keys in desired_delegations(repository).items()
        }
        assert cli_delegations(notary_cli, gun) == want
    assert not Job.objects.filter(status="failed").exists()


def test_jobs_wait_out_a_notary_outage(celery_worker, api, admin, notary_server, notary_cli):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    notary_server.stop()
    try:
        guns = [f"test.gatehouse/outage-{n}-{connection.settings_dict['NAME']}" for n in range(3)]
        for gun in guns:
            create_repository(api, admin, gun, ["ci"])
        wait_until(
            lambda: Job.objects.filter(attempts__gte=2, status="running").count() == 3,
            what="the jobs to retry while Notary is down",
        )
        assert all("Notary unavailable" in job.error for job in Job.objects.all())
    finally:
        notary_server.start()
    wait_until(lambda: all(ready(g) for g in guns) and settled(), what="recovery", timeout=90)
    assert Job.objects.filter(status="succeeded").count() == 3
    for gun in guns:
        assert cli_delegations(notary_cli, gun) == {
            "targets/releases": {key.id},
            "targets/jenkins": {key.id},
        }


def test_repositories_converge_after_notary_restarts_during_a_burst(
    celery_worker, api, admin, notary_server, notary_cli
):
    people = [make_user(f"dev{n}") for n in range(6)]
    for person in people:
        signing_key_of(person)
    team = make_team("ci", members=tuple(people[:3]), actor=admin)
    guns = [f"test.gatehouse/restart-{n}-{connection.settings_dict['NAME']}" for n in range(3)]
    for gun in guns:
        create_repository(api, admin, gun, ["ci"])
    wait_until(lambda: all(ready(g) for g in guns) and settled(), what="3 repositories")

    try:
        for number, person in enumerate(people[3:]):
            team_member_add(actor=admin, team=team, user=person)
            if number == 1:
                notary_server.stop()
        team_member_remove(actor=admin, team=team, user=people[0])
        wait_until(
            lambda: Job.objects.filter(attempts__gte=2).exclude(status="succeeded").exists(),
            what="syncs to retry while Notary restarts",
        )
    finally:
        notary_server.start()
    wait_until(settled, what="the syncs to settle after the restart", timeout=120)

    for gun in guns:
        repository = Repository.objects.get(gun=gun)
        want = {
            role: {k.id for k in keys} for role, keys in desired_delegations(repository).items()
        }
        assert cli_delegations(notary_cli, gun) == want
        assert len(want["targets/releases"]) == 5  # dev1 to dev5, each in their own role
    assert not Job.objects.filter(status="failed").exists()


def test_a_job_whose_worker_is_killed_runs_again_on_another(
    celery_worker, api, admin, notary_server, notary_cli, worker_env, tmp_path
):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    gun = f"test.gatehouse/killed-{connection.settings_dict['NAME']}"
    signal_server = notary_server.server_process
    signal_server.send_signal(signal.SIGSTOP)  # the job will hang in its first request
    try:
        create_repository(api, admin, gun, ["ci"])
        wait_until(
            lambda: Job.objects.filter(gun=gun, status="running").exists(),
            what="the job to start",
        )
        os.killpg(celery_worker.pid, signal.SIGKILL)  # the worker dies mid-job
        celery_worker.wait(timeout=10)
    finally:
        signal_server.send_signal(signal.SIGCONT)
    job = Job.objects.get(gun=gun)
    assert job.status == "running"

    replacement = start_worker(tmp_path / "replacement.log", **worker_env)
    try:
        time.sleep(float(worker_env["GATEHOUSE_JOB_LEASE_SECONDS"]) + 0.5)  # its lease runs out
        assert jobs_requeue_stale(older_than=dt.timedelta(0)) == 1
        wait_until(lambda: ready(gun) and settled(), what="the job to run again")
    finally:
        stop_worker(replacement)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.attempts == 2
    assert cli_delegations(notary_cli, gun) == {
        "targets/releases": {key.id},
        "targets/jenkins": {key.id},
    }


def test_queued_work_survives_a_redis_restart(
    transactional_db, private_redis, api, admin, worker_env, notary_cli, tmp_path
):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    jenkins, bob = make_user("jenkins"), make_user("bob")
    keys = {person.username: signing_key_of(person)[0].id for person in (jenkins, bob)}
    team = make_team("ci", members=(jenkins,), actor=admin)
    guns = [f"test.gatehouse/redis-{n}-{connection.settings_dict['NAME']}" for n in range(3)]
    log = tmp_path / "worker.log"
    worker_env |= {"CELERY_BROKER_URL": private_redis.url, "GATEHOUSE_JOB_REQUEUE_SECONDS": "3"}
    worker = start_worker(log, beat=True, **worker_env)
    try:
        for gun in guns[:2]:
            create_repository(api, admin, gun, ["ci"])
        wait_until(lambda: all(ready(g) for g in guns[:2]) and settled(), what="2 repositories")

        os.killpg(worker.pid, signal.SIGSTOP)  # the worker holds still: messages wait in Redis
        try:
            team_member_add(actor=admin, team=team, user=bob)
            assert Job.objects.filter(kind="sync", status="queued").count() == 2
            private_redis.kill()  # ... and are lost with it
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        create_repository(api, admin, guns[2], ["ci"])  # accepted while the broker is down
        time.sleep(2)  # the worker notices and tries to reconnect
        restarted_at = timezone.now()
        private_redis.start()

        wait_until(lambda: all(ready(g) for g in guns) and settled(), what="recovery", timeout=90)
        assert worker.poll() is None, "the same worker reconnected"
        connected = [
            line
            for line in log.read_text().splitlines()
            if "Connected to redis://" in line and f"127.0.0.1:{private_redis.port}/" in line
        ]
        assert len(connected) >= 2, "connected at start and again after the restart"
    finally:
        stop_worker(worker)
        print(log.read_text()[-5000:])

    assert not Job.objects.filter(status="failed").exists()
    never_delivered = Job.objects.get(gun=guns[2])
    assert never_delivered.enqueued_at > restarted_at, "the sweep sent it again"
    for gun in guns:
        assert cli_delegations(notary_cli, gun) == {
            "targets/releases": set(keys.values()),
            **{f"targets/{name}": {key} for name, key in keys.items()},
        }


def test_the_worker_keeps_its_database_sessions_and_survives_losing_them(
    celery_worker, api, admin, notary_cli
):
    people = [make_user(f"dev{n}") for n in range(5)]
    keys = {person.username: signing_key_of(person)[0].id for person in people}
    team = make_team("ci", members=(people[0],), actor=admin)
    gun = f"test.gatehouse/sessions-{connection.settings_dict['NAME']}"
    create_repository(api, admin, gun, ["ci"])
    wait_until(lambda: ready(gun) and settled(), what="the repository")

    def worker_sessions() -> list[tuple[int, dt.datetime]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, backend_start FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchall()

    before = timezone.now()
    for person in people[1:3]:
        team_member_add(actor=admin, team=team, user=person)
        wait_until(settled, what="the sync")
    sessions = worker_sessions()
    assert sessions, "the worker keeps its sessions between jobs"
    assert all(started < before for _, started in sessions), "and opens none per job"

    with connection.cursor() as cursor:  # PostgreSQL drops them, as in a restart
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
            [[pid for pid, _ in sessions]],
        )
    for person in people[3:]:
        team_member_add(actor=admin, team=team, user=person)
        wait_until(settled, what="the sync after the sessions were lost")
    assert not Job.objects.filter(status="failed").exists()
    assert cli_delegations(notary_cli, gun) == {
        "targets/releases": set(keys.values()),
        **{f"targets/{name}": {key} for name, key in keys.items()},
    }
