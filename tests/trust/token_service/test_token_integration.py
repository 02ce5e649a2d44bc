"""The whole chain on one machine: a real notary-server that demands Gatehouse's tokens, the
real ``notary`` CLI asking Gatehouse's realm with HTTP Basic (``NOTARY_AUTH``), and
Gatehouse's own jobs minting their tokens in-process (docs/notary-protocol.md,
"Token authentication")."""

import base64
import hashlib
import io
import logging
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.services import api_token_create, team_member_add, team_member_remove, user_deactivate
from devtools.notary import NotaryStack
from tests.conftest import NOTARY_CLI_PASSPHRASES
from tests.factories import PASSWORD, make_team, make_user
from tests.trust.helpers import run_jobs, signing_key_of
from tests.trust.token_service.test_keys import signed_with
from trust import custody
from trust.models import CustodyKey, Job
from trust.notary.auth import TokenVerdict
from trust.notary.http_transport import HttpTransport
from trust.services import repositories
from trust.token_service import tokens

pytestmark = [pytest.mark.notary, pytest.mark.django_db(transaction=True)]

RELEASES = "targets/releases"


@pytest.fixture
def cli(token_notary):
    """``cli(trust_dir, *args, auth=(user, password))``: the notary CLI, as that person."""

    def run(trust_dir: Path, *args: str, auth: tuple[str, str] | None = None):
        env = {**os.environ, **NOTARY_CLI_PASSPHRASES}
        env.pop("NOTARY_AUTH", None)
        if auth is not None:
            env["NOTARY_AUTH"] = base64.b64encode(":".join(auth).encode()).decode()
        command = ["notary", "-d", str(trust_dir), "-s", token_notary.url, *args]
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,  # never a password prompt
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    return run


@pytest.fixture
def realm_calls(caplog):
    """The token requests that reached the realm over HTTP, as their log lines."""
    caplog.set_level(logging.INFO, logger="trust.token_service.tokens")

    def calls() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "trust.token_service.tokens" and " via http:" in r.getMessage()
        ]

    return calls


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def publish(cli, trust_dir: Path, gun: str, tag: str, auth) -> subprocess.CompletedProcess:
    return cli(
        trust_dir, "addhash", gun, tag, "3", "--sha256", digest(tag), "-r", RELEASES, "-p",
        auth=auth,
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess) -> bool:
    output = (result.stdout + result.stderr).lower()
    return result.returncode != 0 and ("401" in output or "unauthorized" in output)


def keyring(cli, trust_dir: Path, pem: bytes) -> Path:
    trust_dir.mkdir()
    (trust_dir / "key.pem").write_bytes(pem)
    result = cli(trust_dir, "key", "import", str(trust_dir / "key.pem"))
    assert result.returncode == 0, result.stderr
    return trust_dir


def test_signers_publish_others_are_refused_and_jobs_mint_in_process(
    token_notary, cli, realm_calls, notary_gun, admin, tmp_path, settings
):
    jenkins, moby = make_user("jenkins"), make_user("moby")
    _, jenkins_pem = signing_key_of(jenkins)
    moby_key, _ = signing_key_of(moby)
    ci = make_team("ci", members=(jenkins,), actor=admin)
    make_team("dev", members=(moby,), actor=admin)

    # Gatehouse's job initialises the repository on the token-protected server.
    repositories.repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    jobs = run_jobs()
    assert [(j.kind, j.status, j.error) for j in jobs] == [("initialize", "succeeded", "")]
    assert realm_calls() == []

    # jenkins signs a tag into targets/releases with his bundle key.
    jenkins_dir = keyring(cli, tmp_path / "jenkins", jenkins_pem)
    result = publish(cli, jenkins_dir, notary_gun, "v1", ("jenkins", PASSWORD))
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(
        line.startswith('Notary token for jenkins via http: asked ["repository:')
        and f'granted ["repository:{notary_gun}:push,pull"]' in line
        for line in realm_calls()
    ), realm_calls()
    listing = cli(tmp_path / "reader", "list", notary_gun, auth=("moby", PASSWORD))
    assert listing.returncode == 0, listing.stderr
    assert "v1" in listing.stdout

    # moby, not in a signer team, is refused even with jenkins's key in hand.
    moby_dir = keyring(cli, tmp_path / "moby", jenkins_pem)
    result = publish(cli, moby_dir, notary_gun, "v1-moby", ("moby", PASSWORD))
    assert refused(result), result.stdout + result.stderr

    # A CI system uses an API token as the password.
    raw_token, _ = api_token_create(user=jenkins)
    result = publish(cli, jenkins_dir, notary_gun, "v2", ("jenkins", raw_token))
    assert result.returncode == 0, result.stdout + result.stderr

    # Once he leaves ci, his next publish is refused, before any job has even removed
    # his key from the delegations: the token no longer grants push.
    team_member_remove(actor=admin, team=ci, user=jenkins)
    result = publish(cli, jenkins_dir, notary_gun, "v3", ("jenkins", PASSWORD))
    assert refused(result), result.stdout + result.stderr

    # Gatehouse's own sync jobs still reach the server, minting in-process: moby joins ci.
    calls_before = len(realm_calls())
    team_member_add(actor=admin, team=ci, user=moby)
    team_member_add(actor=admin, team=ci, user=jenkins)
    jobs = run_jobs()
    assert all(j.status == "succeeded" for j in jobs), [(j.kind, j.error) for j in jobs]
    assert Job.objects.filter(kind="sync", status="succeeded").exists()
    assert len(realm_calls()) == calls_before  # the realm was never called by a job
    assert jobs[-1].repository.delegations
    assert any(moby_key.tuf_key_id in entry["key_ids"] for entry in jobs[-1].repository.delegations)

    result = publish(cli, jenkins_dir, notary_gun, "v4", ("jenkins", PASSWORD))
    assert result.returncode == 0, result.stdout + result.stderr

    # Deactivated: his credentials stop working at once.
    user_deactivate(actor=admin, user=jenkins)
    result = publish(cli, jenkins_dir, notary_gun, "v5", ("jenkins", PASSWORD))
    assert result.returncode != 0, result.stdout
    result = publish(cli, jenkins_dir, notary_gun, "v5", ("jenkins", raw_token))
    assert result.returncode != 0, result.stdout

    listing = cli(tmp_path / "final", "list", notary_gun, auth=("moby", PASSWORD))
    tags = {line.split()[0] for line in listing.stdout.splitlines()[2:] if line.strip()}
    # The refused v3 stayed in jenkins's local changelist and went out with v4; moby's
    # and the deactivated jenkins's never did.
    assert tags == {"v1", "v2", "v3", "v4"}, listing.stdout


def test_anonymous_reads_follow_the_setting(
    token_notary, cli, notary_gun, admin, tmp_path, settings
):
    make_team("ci", members=(make_user("jenkins"),), actor=admin)
    repositories.repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    assert [j.status for j in run_jobs()] == ["succeeded"]

    assert settings.GATEHOUSE_NOTARY_ANONYMOUS_PULL is False
    result = cli(tmp_path / "anonymous-1", "list", notary_gun)
    assert result.returncode != 0, result.stdout

    settings.GATEHOUSE_NOTARY_ANONYMOUS_PULL = True
    result = cli(tmp_path / "anonymous-2", "list", notary_gun)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No targets present" in result.stdout + result.stderr

    # Anonymous pull still opens only repositories Gatehouse manages, and never push.
    result = cli(tmp_path / "anonymous-3", "init", f"{notary_gun}-other", "-p")
    assert refused(result), result.stdout + result.stderr


def catalog_token(settings) -> str:
    """A token for notary-server's global endpoints, minted as Gatehouse's jobs mint."""
    service = settings.GATEHOUSE_NOTARY_SERVICE
    return tokens.service_token(service=service, scope="registry:catalog:*")


def notary_answer(stack: NotaryStack, token: str) -> tuple[int, str]:
    """notary-server's status for ``GET /v2/`` with ``token``, and its challenge if any."""
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(f"{stack.url}/v2/", headers=headers)  # noqa: S310 - http
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our stack
            return answer.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("WWW-Authenticate", "")


def test_rotating_the_token_key_never_refuses_a_valid_token(
    token_notary, cli, notary_gun, admin, tmp_path, settings
):
    """The operator's rotation against a notary-server whose rootcertbundle is what
    ``notary_server_config`` writes, restarted with each new bundle."""
    bundle_path = tmp_path / "token-ca.pem"  # where token_notary's config points

    def restart_with_new_bundle() -> None:
        call_command("notary_server_config", "--cert-out", str(bundle_path), stdout=io.StringIO())
        token_notary.stop()
        token_notary.start()
        settings.NOTARY_URL = token_notary.url

    def reads(trust_dir: str) -> bool:
        listing = cli(tmp_path / trust_dir, "list", notary_gun, auth=("root", PASSWORD))
        return listing.returncode == 0 and "No targets present" in listing.stdout + listing.stderr

    old = custody.token_key()
    before_rotation = catalog_token(settings)
    assert notary_answer(token_notary, before_rotation) == (200, "")

    # Stage, and write the bundle, but forget to restart notary-server: it still trusts the
    # old key only, so activating, which would get every token refused, is refused.
    call_command("notary_token_key", "stage", stdout=io.StringIO())
    new = CustodyKey.objects.get(kind="token", state="staged")
    call_command("notary_server_config", "--cert-out", str(bundle_path), stdout=io.StringIO())
    with pytest.raises(CommandError) as refused:
        call_command("notary_token_key", "activate", stdout=io.StringIO())
    assert str(refused.value).startswith(
        f"notary-server at {token_notary.url} refuses tokens signed by token key {new.key_id} "
        "(invalid_token)"
    )
    assert "notary_server_config --cert-out PATH` and restart notary-server" in str(refused.value)
    assert CustodyKey.objects.get(pk=new.pk).state == "staged"
    assert CustodyKey.objects.get(pk=old.pk).state == "current"
    not_restarted = catalog_token(settings)
    assert signed_with(not_restarted) == old.certificate
    assert notary_answer(token_notary, not_restarted) == (200, "")
    # What the check relies on, as notary-server answers it: a token granting nothing is
    # insufficient_scope when it trusts the signer, invalid_token when it does not.
    transport = HttpTransport(token_notary.url)
    for key, verdict in ((old, "insufficient_scope"), (new, "invalid_token")):
        token = tokens.check_token(custody.token_signer_for(key))
        assert transport.token_verdict(token) == verdict
    assert transport.token_verdict(not_restarted) == TokenVerdict.ACCEPTED

    # Restarted: notary-server trusts both keys; the old one still signs.
    restart_with_new_bundle()
    assert bundle_path.read_text().count("BEGIN CERTIFICATE") == 2
    staged_phase = catalog_token(settings)
    assert signed_with(staged_phase) == old.certificate
    for token in (before_rotation, staged_phase):
        assert notary_answer(token_notary, token) == (200, "")

    # Activate, checked: new tokens are the new key's, the old key's tokens stay good.
    out = io.StringIO()
    call_command("notary_token_key", "activate", stdout=out)
    assert out.getvalue().startswith(
        f"Checked: notary-server at {token_notary.url} accepts tokens signed by token key "
        f"{new.key_id}.\n"
    )
    assert CustodyKey.objects.get(kind="token", state="current") == new
    after_activation = catalog_token(settings)
    assert signed_with(after_activation) == new.certificate != old.certificate
    for token in (before_rotation, staged_phase, after_activation):
        assert notary_answer(token_notary, token) == (200, "")
    repositories.repository_create(actor=admin, gun=notary_gun, signer_team_names=[])
    assert [(j.status, j.error) for j in run_jobs()] == [("succeeded", "")]
    assert reads("after-activation")  # the CLI, through the realm, with a new-key token

    # Retire: refused while the old key's tokens are unexpired, so forced here; once
    # notary-server has the bundle without the old key, its tokens are refused.
    with pytest.raises(CommandError, match="may be valid until"):
        call_command("notary_token_key", "retire", stdout=io.StringIO())
    call_command("notary_token_key", "retire", "--force", stdout=io.StringIO())
    assert notary_answer(token_notary, before_rotation) == (200, "")  # until the restart
    restart_with_new_bundle()
    assert bundle_path.read_text().count("BEGIN CERTIFICATE") == 1
    for token in (before_rotation, staged_phase):
        status, challenge = notary_answer(token_notary, token)
        assert status == 401
        assert 'error="invalid_token"' in challenge
    assert notary_answer(token_notary, after_activation) == (200, "")
    assert notary_answer(token_notary, catalog_token(settings)) == (200, "")
    assert reads("after-retirement")


def test_activating_with_a_notary_server_that_asks_for_no_token_says_so(notary_server, settings):
    settings.NOTARY_URL = notary_server.url
    transport = HttpTransport(notary_server.url)
    assert transport.token_verdict("not-even-a-jwt") == TokenVerdict.NOT_REQUIRED
    call_command("notary_token_key", "stage", stdout=io.StringIO())
    staged = CustodyKey.objects.get(kind="token", state="staged")

    out = io.StringIO()
    call_command("notary_token_key", "activate", stdout=out)
    assert out.getvalue().startswith(
        f"Checked: notary-server at {notary_server.url} does not ask for tokens, so it "
        "refuses none.\n"
    )
    assert CustodyKey.objects.get(kind="token", state="current") == staged
