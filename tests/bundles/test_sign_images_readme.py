"""README.md's "Sign images" works as written: jenkins, with a real signing bundle and an API
token, signs with the real ``notary`` CLI on a notary-server whose token service is this
Gatehouse, and Gatehouse's evaluation then passes the tag in his own role.

Docker's own steps (``docker login``, ``docker push``) need a daemon and a registry, so they
are the one block not run; ``docker trust key load`` is, since it needs neither.
"""

import hashlib
import json
import shutil

import pytest

from policy.services import policy_update
from tests.bundles.helpers import run_guide, unzip_bundle
from tests.bundles.test_signing_guide import readme_sign_images_commands
from tests.conftest import require
from tests.factories import PASSWORD, make_team, make_user
from tests.trust.helpers import run_jobs
from trust.services import repositories

pytestmark = [pytest.mark.notary, pytest.mark.django_db(transaction=True)]

TAG = "1.0"
MANIFEST = b'{"schemaVersion": 2, "config": "jenkins built this"}'


def test_the_readmes_commands_sign_in_jenkinss_role_and_the_tag_passes(
    token_notary,
    live_server,
    client,
    admin,
    notary_gun,
    tmp_path,
):
    require(shutil.which("notary") is not None, "the notary CLI (Debian package notary)")
    require(shutil.which("docker") is not None, "Docker's CLI")
    require(shutil.which("curl") is not None, "curl")
    jenkins = make_user("jenkins")
    make_team("ci", members=(jenkins,), actor=admin)
    repositories.repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )

    # jenkins downloads a signing bundle from My profile and unzips it.
    client.force_login(jenkins)
    bundle = tmp_path / "bundle"
    response = client.post("/profile/bundle/", {"signing": "on"})
    unzip_bundle(response.content, bundle)
    # Gatehouse's sync delegates his role to the new key.
    assert {job.status for job in run_jobs()} == {"succeeded"}

    # The installation the README is written for becomes this one; its Notary's CA is the
    # test stack's (the notary CLI loads it; the stack serves plain HTTP).
    shutil.copy(token_notary.state_dir / "certs" / "ca.crt", bundle / "notary-ca.pem")
    token, key, reach, _docker, notary_cli, check = readme_sign_images_commands()
    digest = hashlib.sha256(MANIFEST).hexdigest()
    home = tmp_path / "home"
    result = run_guide(
        "\n".join([token, key, reach, notary_cli, check]),
        blanks={
            "https://gatehouse.example.com": live_server.url,
            "https://notary.example.com:4443": token_notary.url,
            "<registry>/<repository>": notary_gun,
            "<tag>": TAG,
            "<size>": str(len(MANIFEST)),
            "<digest>": digest,
        },
        bundle=bundle,
        home=home,
        password=PASSWORD,
    )

    # `notary list --roles targets/jenkins` lists the tag with its digest.
    listed = [line.split() for line in result.stdout.splitlines()]
    assert [TAG, digest, str(len(MANIFEST)), "targets/jenkins"] in listed, result.stdout
    # Docker loaded the key under his role's name.
    assert list((home / ".docker" / "trust" / "private").glob("*.key"))
    # The evaluation the README's curl asked for (the last line of output) allows the tag,
    # signed by jenkins in his own role.
    evaluation = json.loads(result.stdout.strip().splitlines()[-1])
    assert evaluation["allowed"] is True, evaluation
    (team,) = evaluation["teams"]
    assert [(s["username"], s["role"]) for s in team["signers"]] == [
        ("jenkins", "targets/jenkins")
    ], team
