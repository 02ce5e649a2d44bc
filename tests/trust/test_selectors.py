"""What a sync reads and writes, without Notary: the desired keys in one query, and what is
recorded when the job finishes."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import User
from bundles.models import PublicKey
from bundles.services import bundle_issue, public_key_revoke
from tests.factories import make_team, make_user
from tests.trust.helpers import signing_key_of
from trust.selectors import desired_delegations
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db


def ids(keys: list[PublicKey]) -> list[str]:
    return [key.id for key in keys]


def test_desired_delegations_are_the_signing_keys_of_active_members_of_signer_teams(admin):
    alice, frank, bob, carol, dave, erin, gina = (
        make_user(name) for name in ("alice", "frank", "bob", "carol", "dave", "erin", "gina")
    )
    alice_key, _ = signing_key_of(alice)
    frank_key, _ = signing_key_of(frank)
    bob_key, _ = signing_key_of(bob)
    public_key_revoke(actor=bob, key=bob_key)
    bundle_issue(user=carol, signing=False)
    dave_key, _ = signing_key_of(dave)
    PublicKey.objects.filter(pk=dave_key.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    signing_key_of(erin)
    User.objects.filter(pk=erin.pk).update(is_active=False)
    signing_key_of(gina)
    make_team("qa", members=(alice, frank), actor=admin)
    make_team("ci", members=(alice, bob, carol, dave, erin), actor=admin)
    make_team("ops", members=(gina,), actor=admin)  # signs nothing here
    make_team("docs", actor=admin)  # a signer team without keys: no role
    repository, _ = repository_create(
        actor=admin, gun="registry.example.com/ci/app", signer_team_names=["qa", "ci", "docs"]
    )

    desired = desired_delegations(repository)

    # One role per person, with that person's keys alone; releases with all of them.
    assert list(desired) == ["targets/alice", "targets/frank", "targets/releases"]
    assert ids(desired["targets/alice"]) == [alice_key.id]
    assert ids(desired["targets/frank"]) == [frank_key.id]
    assert ids(desired["targets/releases"]) == sorted([alice_key.id, frank_key.id])
    assert desired["targets/alice"][0].certificate  # whole keys, as the ORM gives them


def test_desired_delegations_are_one_query_for_any_number_of_signers_and_keys(
    admin, django_assert_num_queries
):
    people = [make_user(f"dev{n}") for n in range(6)]
    for person in people:
        signing_key_of(person)
    make_team("ci", members=tuple(people[:3]), actor=admin)
    make_team("qa", members=tuple(people[2:]), actor=admin)
    repository, _ = repository_create(
        actor=admin, gun="registry.example.com/ci/app", signer_team_names=["ci", "qa"]
    )
    with django_assert_num_queries(1):
        desired = desired_delegations(repository)
    # dev2 is in both teams and still has one role; each role one key, releases all six.
    assert {role: len(keys) for role, keys in desired.items()} == {
        **{f"targets/dev{n}": 1 for n in range(6)},
        "targets/releases": 6,
    }
