"""The drift check: what Notary holds that it should not, and what it lacks, repaired by a sync."""

import pytest
from prometheus_client import REGISTRY

from accounts.services import team_member_remove
from tests.factories import make_team, make_user
from tests.trust.helpers import cli_delegations, run_jobs, signing_key_of
from trust import custody, selectors
from trust.models import Job, Repository
from trust.notary_access import notary_client
from trust.services.drift import drift_check
from trust.services.repositories import repository_create

pytestmark = [pytest.mark.django_db, pytest.mark.notary]


def test_drift_is_reported_and_repaired(on_notary, notary_cli, notary_gun, admin, api):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    repository, _ = repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    run_jobs()
    repository.refresh_from_db()
    # Someone with the targets key removes targets/jenkins behind Gatehouse's back.
    notary_client().set_delegations(
        notary_gun,
        {"targets/releases": selectors.tuf_keys([key])},
        targets_key=custody.signing_key(repository.targets_key),
        custodian=custody.signing_key(custody.custodian_key()),
    )

    found = REGISTRY.get_sample_value("gatehouse_drift_found_total")
    drift = drift_check(repository=repository)

    assert drift == {"missing": {"targets/jenkins": [key.id]}, "unexpected": {}}
    assert REGISTRY.get_sample_value("gatehouse_drift_found_total") == found + 1
    shown = api(admin).get(f"/api/v1/repositories/{repository.pk}/").json()
    assert shown["drift"] == drift
    assert Job.objects.filter(repository=repository, kind="sync", status="queued").exists()
    run_jobs()
    assert cli_delegations(notary_cli, notary_gun) == {
        "targets/releases": {key.id},
        "targets/jenkins": {key.id},
    }
    assert drift_check(repository=repository) is None
    assert REGISTRY.get_sample_value("gatehouse_drift_found_total") == found + 1


def test_the_drift_check_lets_the_custodian_go_once_a_remaining_signer_publishes(
    on_notary, notary_cli_in, admin, api, tmp_path
):
    from tests.policy.signing import RELEASES, SigningWorld

    world = SigningWorld(admin, api, notary_cli_in, on_notary.url, tmp_path)
    world.person("jenkins", "ci")
    world.person("alice", "ci")
    gun = world.repository("ci")
    world.sign("alice", gun, "2.0", "a2" * 32)
    world.sign("jenkins", gun, "1.0", "a1" * 32)  # releases is now signed by jenkins alone
    team_member_remove(
        actor=admin,
        team=world.people["jenkins"].user.teams.get(),
        user=world.people["jenkins"].user,
    )
    world.sync()
    repository = Repository.objects.get(gun=gun)
    custodian = custody.custodian_key().key_id
    assert custodian in repository.delegations[0]["key_ids"]  # releases, reset by it

    assert drift_check(repository=repository) is None  # in step: not drift
    assert world.sync()[-1].cause == "custodian still delegated"
    repository.refresh_from_db()
    assert custodian in repository.delegations[0]["key_ids"]  # nobody has signed since

    world.sign("alice", gun, "3.0", "a3" * 32, RELEASES)
    drift_check(repository=repository)
    world.sync()
    repository.refresh_from_db()
    assert all(custodian not in entry["key_ids"] for entry in repository.delegations)
