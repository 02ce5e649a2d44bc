"""A repository's page as its signers and admins meet it: Repositories in everyone's
navigation, the delegations card naming the people, and what to do when nobody can sign.
No Notary is needed: the repositories here are not ready, so no trust data is read."""

import pytest

from tests.factories import make_team, make_user
from tests.trust.helpers import signing_key_of
from trust.models import Repository
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
NAV = ">Repositories</a>"


@pytest.fixture
def ci(admin, alice):
    return make_team("ci", members=(alice,), actor=admin)


def test_every_signed_in_user_sees_repositories_in_the_navigation(client, alice, ci, admin):
    repository, _ = repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    repository_create(actor=admin, gun="registry.example.com/ops/db", signer_team_names=[])
    client.force_login(alice)

    assert NAV in client.get("/").text
    listing = client.get("/repositories/").text
    assert GUN in listing
    assert "ops/db" not in listing  # only the repositories her teams sign
    page = client.get(f"/repositories/{repository.pk}/").text
    assert 'id="signed-tags"' in page
    assert "Signed tags show once the repository is ready." in page


def test_the_delegations_card_names_the_people_of_each_role(client, admin, alice, ci):
    key, _ = signing_key_of(alice)
    repository, _ = repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    Repository.objects.filter(pk=repository.pk).update(
        delegations=[
            {"role": "targets/alice", "key_ids": [key.tuf_key_id]},
            {"role": "targets/releases", "key_ids": [key.tuf_key_id]},
        ]
    )
    client.force_login(admin)

    page = client.get(f"/repositories/{repository.pk}/").text

    assert 'Signs as <span class="mono">alice</span>' in page
    assert 'Everyone who signs: <span class="mono">alice</span>' in page


@pytest.mark.parametrize(
    ("teams", "words"),
    [
        (
            ["ci"],
            "No member of ci has a signing key: ask them to download a bundle with "
            "“Use as signing key” ticked.",
        ),
        (
            ["ci", "ops"],
            "No member of ci or ops has a signing key: ask them to download a bundle with "
            "“Use as signing key” ticked.",
        ),
        ([], "This repository has no signer teams, so nobody may sign: choose them under "),
    ],
)
def test_without_signers_the_page_says_what_to_do(client, admin, ci, teams, words):
    make_team("ops", members=(make_user("bob"),), actor=admin)
    repository, _ = repository_create(actor=admin, gun=GUN, signer_team_names=teams)
    Repository.objects.filter(pk=repository.pk).update(last_synced_at="2026-01-01T00:00:00Z")
    client.force_login(admin)

    page = client.get(f"/repositories/{repository.pk}/").text

    assert words in page
