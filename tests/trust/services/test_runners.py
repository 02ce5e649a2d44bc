"""The Notary work of each job kind, against a real notary-server, checked with the real CLI."""

import pytest

from accounts.services import team_member_add, team_member_remove, user_deactivate
from bundles.services import public_key_revoke
from tests.factories import make_team, make_user
from tests.trust.helpers import cli_delegations, run_jobs, signing_key_of
from trust import custody
from trust.models import Job, Repository
from trust.services.jobs import job_run
from trust.services.repositories import repository_create, repository_delete

pytestmark = [pytest.mark.django_db, pytest.mark.notary]


def test_the_seed_scenario(on_notary, notary_cli, notary_gun, admin):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)

    repository, job = repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    assert job.kind == "initialize"
    jobs = run_jobs()

    assert [j.status for j in jobs] == ["succeeded"]
    repository.refresh_from_db()
    assert repository.state == "ready"
    assert cli_delegations(notary_cli, notary_gun) == {
        "targets/releases": {key.id},
        "targets/jenkins": {key.id},
    }


def test_membership_and_key_changes_reach_notary(on_notary, notary_cli, notary_gun, admin):
    jenkins, moby = make_user("jenkins"), make_user("moby")
    jenkins_key, _ = signing_key_of(jenkins)
    moby_key, _ = signing_key_of(moby)
    ci = make_team("ci", members=(jenkins,), actor=admin)
    repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    run_jobs()

    team_member_add(actor=admin, team=ci, user=moby)
    run_jobs()
    assert cli_delegations(notary_cli, notary_gun) == {
        "targets/releases": {jenkins_key.id, moby_key.id},
        "targets/jenkins": {jenkins_key.id},
        "targets/moby": {moby_key.id},
    }

    team_member_remove(actor=admin, team=ci, user=jenkins)
    run_jobs()
    assert cli_delegations(notary_cli, notary_gun) == {
        "targets/releases": {moby_key.id},
        "targets/moby": {moby_key.id},
    }

    public_key_revoke(actor=moby, key=moby_key)
    run_jobs()
    assert cli_delegations(notary_cli, notary_gun) == {}
    assert Job.objects.filter(status="failed").count() == 0


def test_deactivation_removes_every_key_of_the_user(on_notary, notary_cli, notary_gun, admin):
    jenkins = make_user("jenkins")
    signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    run_jobs()
    user_deactivate(actor=admin, user=jenkins)
    run_jobs()
    assert cli_delegations(notary_cli, notary_gun) == {}


def test_a_gun_with_trust_data_elsewhere_fails_its_job_clearly(
    on_notary, notary_cli, notary_gun, admin
):
    notary_cli("init", notary_gun, "-p")
    repository, _ = repository_create(actor=admin, gun=notary_gun)
    (job,) = run_jobs()
    assert job.status == "failed"
    assert "already has trust data" in job.error
    assert "adopt" in job.error
    repository.refresh_from_db()
    assert repository.state == "failed"


def test_delete_removes_the_trust_data_then_the_row(on_notary, notary_cli, notary_gun, admin):
    repository, _ = repository_create(actor=admin, gun=notary_gun)
    run_jobs()
    job = repository_delete(actor=admin, repository=repository)
    run_jobs()
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert not Repository.objects.filter(gun=notary_gun).exists()
    listed = notary_cli("list", notary_gun, fresh=True, check=False)
    assert "does not have trust data" in listed.stdout + listed.stderr


def test_a_sync_costs_the_same_queries_for_any_number_of_signers_and_keys(
    on_notary, notary_gun, admin
):
    """Claim and start, the desired keys (one query), the custodian, then record, finish and
    release together: a fixed number of queries, however many teams and keys there are."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    people = [make_user(f"dev{n}") for n in range(8)]
    for person in people:
        signing_key_of(person)
    ci = make_team("ci", members=(people[0],), actor=admin)
    qa = make_team("qa", actor=admin)
    repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci", "qa"])
    run_jobs()
    custody.custodian_key()  # made by the first sync that needs it: not what is counted

    def sync_queries() -> int:
        (job,) = Job.objects.filter(kind="sync", status="queued")
        with CaptureQueriesContext(connection) as queries:
            job_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
        return len(queries)

    team_member_add(actor=admin, team=ci, user=people[1])
    few = sync_queries()
    for person in people[2:5]:
        team_member_add(actor=admin, team=ci, user=person)
    for person in people[5:]:
        team_member_add(actor=admin, team=qa, user=person)
    many = sync_queries()

    # 8 to read, claim and start the job (its "started" event included), 2 reads, 6 to finish
    assert many == few == 16
    repository = Repository.objects.get(gun=notary_gun)
    assert {d["role"]: len(d["key_ids"]) for d in repository.delegations} == {
        "targets/releases": 8,
        **{f"targets/dev{n}": 1 for n in range(8)},
    }
