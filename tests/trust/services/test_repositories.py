"""Adopting a repository the real notary CLI made, with the targets key from its trust dir."""

import pytest

from tests.factories import make_team, make_user
from tests.trust.helpers import cli_delegations, run_jobs, signing_key_of
from trust.models import CustodyKey, Repository

pytestmark = [pytest.mark.django_db, pytest.mark.notary]


TARGETS_PASSPHRASE = "targets-passphrase"  # what the notary_cli fixture gives the CLI


def targets_key_file(tmp_path, gun: str) -> str:
    for path in (tmp_path / "trust" / "private").glob("*.key"):
        text = path.read_text()
        headers = set(text.splitlines())
        if "role: targets" in headers and f"gun: {gun}" in headers:
            return text
    raise AssertionError("the CLI wrote no targets key")


def adopt(api, admin, gun: str, key: str, passphrase: str):
    return api(admin).post(
        "/api/v1/repositories/adopt/",
        {"gun": gun, "targets_key": key, "passphrase": passphrase, "signer_teams": ["ci"]},
        format="json",
    )


def nothing_stored(gun: str) -> bool:
    return (
        not Repository.objects.filter(gun=gun).exists()
        and not CustodyKey.objects.filter(kind="targets").exists()
    )


def test_adopt_takes_over_a_cli_repository(on_notary, api, admin, notary_cli, notary_gun, tmp_path):
    jenkins = make_user("jenkins")
    key, _ = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    notary_cli("init", notary_gun, "-p")
    notary_cli("key", "rotate", notary_gun, "snapshot", "-r")
    pem = targets_key_file(tmp_path, notary_gun)

    wrong = adopt(api, admin, notary_gun, pem, "not the passphrase")
    assert wrong.status_code == 400
    assert "passphrase" in wrong.json()
    assert nothing_stored(notary_gun)

    response = adopt(api, admin, notary_gun, pem, TARGETS_PASSPHRASE)
    assert response.status_code == 202, response.content
    assert response.json()["adopted"] is True
    (job,) = run_jobs()
    assert job.kind == "adopt"
    assert job.status == "succeeded", job.error
    assert cli_delegations(notary_cli, notary_gun) == {
        "targets/releases": {key.id},
        "targets/jenkins": {key.id},
    }
    repository = Repository.objects.get(gun=notary_gun)
    assert repository.state == "ready"
    assert repository.pinned_root_key_ids
    assert b"PRIVATE KEY" not in bytes(repository.targets_key.sealed_private_key)


def test_adopt_refuses_another_repositorys_key_and_a_client_managed_snapshot(
    on_notary, api, admin, notary_cli, notary_gun, tmp_path
):
    make_team("ci", actor=admin)
    other = notary_gun + "-other"
    notary_cli("init", notary_gun, "-p")
    notary_cli("init", other, "-p")
    notary_cli("key", "rotate", other, "snapshot", "-r")

    wrong_key = adopt(api, admin, other, targets_key_file(tmp_path, notary_gun), TARGETS_PASSPHRASE)
    assert wrong_key.status_code == 400
    assert "not the targets key" in str(wrong_key.json()["targets_key"])

    client_snapshot = adopt(
        api, admin, notary_gun, targets_key_file(tmp_path, notary_gun), TARGETS_PASSPHRASE
    )
    assert client_snapshot.status_code == 400
    assert f"notary key rotate {notary_gun} snapshot -r" in str(client_snapshot.json()["gun"])

    garbage = adopt(api, admin, other, "not a key", "")
    assert garbage.status_code == 400
    assert "targets_key" in garbage.json()
    unknown = adopt(
        api, admin, notary_gun + "-none", targets_key_file(tmp_path, other), TARGETS_PASSPHRASE
    )
    assert unknown.status_code == 400
    assert "no trust data" in str(unknown.json()["gun"])
    assert nothing_stored(notary_gun)
    assert nothing_stored(other)
