"""Sync requests: a queued sync absorbs the requests after it."""

import pytest

from accounts.services import team_member_add
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs, signing_key_of
from trust.models import Job, Repository
from trust.services.repositories import repository_create

pytestmark = [pytest.mark.django_db, pytest.mark.notary]


def test_a_burst_of_changes_is_absorbed_by_one_queued_sync(on_notary, notary_gun, admin):
    people = [make_user(f"dev{n}") for n in range(5)]
    for person in people:
        signing_key_of(person)
    team = make_team("ci", actor=admin)
    repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    run_jobs()
    for person in people:
        team_member_add(actor=admin, team=team, user=person)
    queued = Job.objects.filter(kind="sync", status="queued")
    assert queued.count() == 1
    run_jobs()
    repository = Repository.objects.get(gun=notary_gun)
    (releases,) = [d for d in repository.delegations if d["role"] == "targets/releases"]
    assert len(releases["key_ids"]) == 5
