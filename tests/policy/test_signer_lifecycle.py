"""Signers come and go, rotate keys and make mistakes: one signing role per user means each
change touches that user's tags alone. Everything runs against the real notary-server, with
the real ``notary`` CLI signing (and Docker's CLI reading) as people do.

The world is two members of ``ci``: jenkins signs 1.0 and alice signs 2.0, each in
``targets/releases`` and in their own role, as ``docker push`` with content trust does.
"""

import datetime as dt
import http.client
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from accounts.models import Team
from accounts.services import team_member_add, team_member_remove, user_deactivate
from bundles.models import PublicKey
from bundles.selectors import signing_role_of
from bundles.services import public_key_register, public_key_revoke, public_key_update
from policy.evaluation import (
    DEACTIVATED,
    KEY_EXPIRED,
    KEY_NOT_SIGNING,
    KEY_REVOKED,
    NOT_IN_TEAM,
)
from policy.models import EvaluationInputs
from tests.bundles.helpers import proof
from tests.conftest import require
from tests.factories import make_user
from tests.policy.signing import RELEASES, SigningWorld
from trust.custody import custodian_key
from trust.models import Job, Repository
from trust.services.sync_requests import repository_sync_request

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

A = "a1" * 32  # jenkins's 1.0
B = "b2" * 32  # alice's 2.0
C = "c3" * 32  # alice's 3.0


@pytest.fixture
def ci(world) -> str:
    """jenkins and alice in ci, a repository ci signs, and the policy requiring ci."""
    world.person("jenkins", "ci")
    world.person("alice", "ci")
    gun = world.repository("ci")
    world.policy("ci")
    return gun


# --- What the server holds, read as anyone can ------------------------------------------


def role_file(world: SigningWorld, gun: str, role: str) -> dict:
    return json.loads(world.fetch(gun, role))


def signature_key_ids(world: SigningWorld, gun: str, role: str) -> set[str]:
    return {signature["keyid"] for signature in role_file(world, gun, role)["signatures"]}


def delegated_key_ids(world: SigningWorld, gun: str) -> dict[str, set[str]]:
    """Role -> key IDs, as the current ``targets`` file delegates them."""
    delegations = role_file(world, gun, "targets")["signed"]["delegations"]
    return {role["name"]: set(role["keyids"]) for role in delegations["roles"]}


def entries(world: SigningWorld, gun: str, role: str) -> dict:
    """The role's target entries exactly as stored (name -> length and hashes)."""
    return role_file(world, gun, role)["signed"]["targets"]


def cli_list(world: SigningWorld, gun: str, role: str = RELEASES) -> dict[str, str]:
    """Tag -> hex digest, as a fresh ``notary list -r role`` (no cached metadata) shows it."""
    trust_dir = world.tmp / f"fresh-{uuid.uuid4().hex[:8]}"
    output = world.cli(trust_dir, "list", gun, "-r", role).stdout
    tags = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 4 and len(words[1]) == 64 and words[3] == role:
            tags[words[0]] = words[1]
    return tags


def signed_with(*keys: PublicKey) -> set[str]:
    """The key IDs that signatures by ``keys`` carry: their x509 IDs, as delegated."""
    return {key.tuf_key_id for key in keys}


def reasons(result: dict) -> list[str]:
    return [n["reason"] for team in result["teams"] for n in team["not_counted"]]


def signer_keys(result: dict) -> set[tuple[str, str]]:
    """(username, key ID) of every signature that satisfied a team."""
    return {(s["username"], s["key_id"]) for team in result["teams"] for s in team["signers"]}


def generation() -> tuple:
    inputs = EvaluationInputs.objects.get(pk=1)
    return inputs.epoch, inputs.generation


def synced(world: SigningWorld, gun: str) -> Job:
    """Run what is queued, as the worker would; the one sync of ``gun`` that ran."""
    last = Job.objects.order_by("-id").values_list("id", flat=True).first() or 0
    queued = set(Job.objects.filter(status="queued").values_list("id", flat=True))
    ran = [
        job
        for job in world.sync()
        if (job.id > last or job.id in queued) and job.kind == "sync" and job.gun == gun
    ]
    assert len(ran) == 1, ran
    return ran[0]


def sync_now(world: SigningWorld, gun: str) -> Job:
    """An admin's "sync now", run to the end."""
    repository_sync_request(
        repository=Repository.objects.get(gun=gun), actor=world.admin, cause="test", delay=0
    )
    return synced(world, gun)


class Snapshot:
    """jenkins's 1.0 as it stands: its decision, who satisfied ci, its releases entry and
    the bytes of jenkins's role; ``unchanged`` compares a later reading to it."""

    def __init__(self, world: SigningWorld, gun: str) -> None:
        self.world, self.gun = world, gun
        self.taken = self.read()

    def read(self) -> tuple:
        result = self.world.evaluate(f"{self.gun}:1.0")
        jenkins = self.world.people["jenkins"]
        return (
            self.world.decision(f"{self.gun}:1.0"),
            result["digest"],
            signer_keys(result),
            entries(self.world, self.gun, RELEASES)["1.0"],
            self.world.fetch(self.gun, jenkins.role),
        )

    def unchanged(self) -> None:
        now = self.read()
        assert now == self.taken
        assert now[0] == "allowed"


# --- A leaver touches only themself ---------------------------------------------------


def leave_ci(world: SigningWorld) -> None:
    jenkins = world.people["jenkins"].user
    team_member_remove(actor=world.admin, team=Team.objects.get(name="ci"), user=jenkins)


def deactivate(world: SigningWorld) -> None:
    user_deactivate(actor=world.admin, user=world.people["jenkins"].user)


@pytest.mark.parametrize(
    ("leave", "why"), [(leave_ci, NOT_IN_TEAM), (deactivate, DEACTIVATED)], ids=["leaves", "deact"]
)
def test_a_leaver_touches_only_themself(world, ci, leave, why):
    gun = ci
    jenkins, alice = world.people["jenkins"], world.people["alice"]
    assert (jenkins.role, alice.role) == ("targets/jenkins", "targets/alice")
    world.sign("alice", gun, "2.0", B)
    world.sign("jenkins", gun, "1.0", A, jenkins.role, RELEASES)  # releases last, by jenkins
    assert signature_key_ids(world, gun, RELEASES) == signed_with(jenkins.key)
    assert cli_list(world, gun) == {"1.0": A, "2.0": B}
    assert world.decision(f"{gun}:1.0") == "allowed"
    assert world.decision(f"{gun}:2.0") == "allowed"
    alice_entry = entries(world, gun, RELEASES)["2.0"]
    alice_role = world.fetch(gun, alice.role)

    leave(world)

    # At the very next evaluation, before any sync: jenkins's signature stops counting.
    before_sync = world.evaluate(f"{gun}:1.0")
    assert before_sync["decision"] == "denied", before_sync
    assert reasons(before_sync) == [why], before_sync
    assert world.decision(f"{gun}:2.0") == "allowed"

    job = synced(world, gun)
    assert job.result["reset_roles"] == [RELEASES], job.result

    # jenkins's role is gone and the custodian holds releases, signed by it alone.
    custodian = custodian_key().key_id
    delegated = delegated_key_ids(world, gun)
    assert jenkins.role not in delegated
    assert delegated[alice.role] == {alice.key.tuf_key_id}
    assert delegated[RELEASES] == {alice.key.tuf_key_id, custodian}
    assert signature_key_ids(world, gun, RELEASES) == {custodian}

    # alice's 2.0 is untouched: same entry in releases, same role file, still allowed.
    assert cli_list(world, gun) == {"2.0": B}
    assert entries(world, gun, RELEASES) == {"2.0": alice_entry}
    assert world.fetch(gun, alice.role) == alice_role
    assert world.decision(f"{gun}:2.0") == "allowed"
    assert world.decision(f"{gun}@sha256:{B}") == "allowed"

    # jenkins's 1.0 no longer passes, by tag or by digest: his role is no longer delegated.
    for image in (f"{gun}:1.0", f"{gun}@sha256:{A}"):
        after = world.evaluate(image)
        assert after["decision"] == "denied", after
        assert any("does not exist" in reason for reason in after["reasons"]), after
        assert world.decision(image) == "denied"

    # releases still verifies for alice: she publishes 3.0 with the CLI and it passes.
    world.sign("alice", gun, "3.0", C)
    assert cli_list(world, gun) == {"2.0": B, "3.0": C}
    assert signature_key_ids(world, gun, RELEASES) == signed_with(alice.key)
    assert world.decision(f"{gun}:3.0") == "allowed"
    assert world.decision(f"{gun}:2.0") == "allowed"

    # Once she has signed, the next sync takes the custodian out of releases.
    job = sync_now(world, gun)
    assert job.result["published"] is True, job.result
    assert job.result["reset_roles"] == [], job.result
    delegated = delegated_key_ids(world, gun)
    assert delegated[RELEASES] == {alice.key.tuf_key_id}
    assert custodian not in set().union(*delegated.values())
    assert cli_list(world, gun) == {"2.0": B, "3.0": C}
    assert world.decision(f"{gun}:3.0") == "allowed"
    assert world.decision(f"{gun}:1.0") == "denied"


# --- Key rotation -----------------------------------------------------------------------


def test_full_key_rotation_as_a_user_does_it(world, ci):
    gun = ci
    alice = world.people["alice"]
    old = alice.key
    world.sign("jenkins", gun, "1.0", A)
    world.sign("alice", gun, "2.0", B)  # alice publishes releases last, with her old key
    jenkins_1_0 = Snapshot(world, gun)
    assert world.decision(f"{gun}:2.0") == "allowed"

    releases = entries(world, gun, RELEASES)
    assert set(releases) == {"1.0", "2.0"}

    # 1. A new signing bundle: her role now holds both keys.
    new = world.new_key("alice")
    assert synced(world, gun).result["reset_roles"] == []
    assert delegated_key_ids(world, gun)[alice.role] == {old.tuf_key_id, new.tuf_key_id}
    jenkins_1_0.unchanged()
    assert signer_keys(world.evaluate(f"{gun}:2.0")) == {("alice", old.id)}

    # 2. She signs again: ``notary witness`` re-signs her role as it stands (adding 2.0 again
    # would change nothing, so publish nothing), with every key of the role the CLI holds.
    version = world.version(gun, alice.role)
    world.cli(alice.trust_dir, "witness", gun, alice.role, "-p")
    assert world.version(gun, alice.role) == version + 1
    assert signature_key_ids(world, gun, alice.role) == signed_with(old, new)
    jenkins_1_0.unchanged()
    assert world.decision(f"{gun}:2.0") == "allowed"

    # 3. She revokes the old key; the sync drops it everywhere.
    public_key_revoke(actor=alice.user, key=PublicKey.objects.get(pk=old.pk))
    jenkins_1_0.unchanged()  # at the next evaluation, before the sync
    assert signer_keys(world.evaluate(f"{gun}:2.0")) == {("alice", new.id)}
    # releases was last signed by her old key alone: reset by the custodian, keeping what
    # her role (re-signed with the new key) and jenkins's role vouch for, identically.
    assert synced(world, gun).result["reset_roles"] == [RELEASES]
    assert entries(world, gun, RELEASES) == releases
    delegated = delegated_key_ids(world, gun)
    assert delegated[alice.role] == {new.tuf_key_id}
    assert old.tuf_key_id not in set().union(*delegated.values())
    jenkins_1_0.unchanged()
    assert cli_list(world, gun) == {"1.0": A, "2.0": B}
    result = world.evaluate(f"{gun}:2.0")
    assert result["decision"] == "allowed", result
    assert signer_keys(result) == {("alice", new.id)}
    assert world.decision(f"{gun}:2.0") == "allowed"

    # And with the new key alone she keeps signing.
    world.sign("alice", gun, "3.0", C)
    assert signature_key_ids(world, gun, alice.role) == signed_with(new)
    assert signer_keys(world.evaluate(f"{gun}:3.0")) == {("alice", new.id)}
    jenkins_1_0.unchanged()


def test_rotation_mistake_revoking_the_only_key_first(world, ci):
    gun = ci
    alice = world.people["alice"]
    world.sign("jenkins", gun, "1.0", A)
    world.sign("alice", gun, "2.0", B)  # alice publishes releases last
    assert signature_key_ids(world, gun, RELEASES) == signed_with(alice.key)
    jenkins_1_0 = Snapshot(world, gun)

    public_key_revoke(actor=alice.user, key=PublicKey.objects.get(pk=alice.key.pk))

    # Before the sync: alice's 2.0 is denied because her key is revoked; 1.0 stands.
    result = world.evaluate(f"{gun}:2.0")
    assert result["decision"] == "denied", result
    assert reasons(result) == [KEY_REVOKED], result
    assert world.decision(f"{gun}:2.0") == "denied"
    jenkins_1_0.unchanged()

    # The sync: alice has no signing key, so no role; releases, last signed by her revoked
    # key, is reset by the custodian and keeps what jenkins's role vouches for.
    job = synced(world, gun)
    assert job.result["reset_roles"] == [RELEASES], job.result
    assert alice.role not in delegated_key_ids(world, gun)
    assert signature_key_ids(world, gun, RELEASES) == {custodian_key().key_id}
    jenkins_1_0.unchanged()
    assert cli_list(world, gun) == {"1.0": A}
    for image in (f"{gun}:2.0", f"{gun}@sha256:{B}"):
        assert world.decision(image) == "denied"

    # She downloads a new bundle and signs again: her role comes back, reset by the
    # custodian so her new key can publish it, and 2.0 passes once more.
    new = world.new_key("alice")
    job = synced(world, gun)
    assert alice.role in job.result["reset_roles"], job.result
    world.sign("alice", gun, "2.0", B)
    result = world.evaluate(f"{gun}:2.0")
    assert result["decision"] == "allowed", result
    assert signer_keys(result) == {("alice", new.id)}
    assert cli_list(world, gun) == {"1.0": A, "2.0": B}
    jenkins_1_0.unchanged()


# --- Stale inputs -----------------------------------------------------------------------


def test_revoking_a_key_not_marked_signing_shows_at_the_next_evaluation(world, ci):
    gun = ci
    alice = world.people["alice"]
    world.sign("alice", gun, "2.0", B)
    assert world.decision(f"{gun}:2.0") == "allowed"
    key = PublicKey.objects.get(pk=alice.key.pk)

    public_key_update(actor=alice.user, key=key, is_signing_key=False)
    result = world.evaluate(f"{gun}:2.0")  # no sync: her role on Notary still holds the key
    assert result["decision"] == "denied", result
    assert reasons(result) == [KEY_NOT_SIGNING], result
    assert {n["key_id"] for t in result["teams"] for n in t["not_counted"]} == {key.id}

    queued = Job.objects.filter(status="queued").count()
    public_key_revoke(actor=alice.user, key=PublicKey.objects.get(pk=key.pk))
    assert Job.objects.filter(status="queued").count() == queued  # delegated nowhere: no sync
    result = world.evaluate(f"{gun}:2.0")
    assert result["decision"] == "denied", result
    assert reasons(result) == [KEY_REVOKED], result
    assert world.decision(f"{gun}:2.0") == "denied"


def test_a_certificate_past_its_not_after_never_counts(world, ci):
    """The notAfter is checked against the clock at each evaluation: the database is not
    touched, no evaluation input changes, and the next evaluation says key_expired."""
    gun = ci
    carol = make_user("carol")
    team_member_add(actor=world.admin, team=Team.objects.get(name="ci"), user=carol)
    lifetime = dt.timedelta(seconds=15)
    pem, certificate = short_lived_key(lifetime)
    key = public_key_register(
        actor=world.admin,
        user=carol,
        certificate=certificate,
        signing=True,
        **proof(world.admin, serialization.load_pem_private_key(pem, None)),
    )
    role = signing_role_of(carol).role
    world.sync()
    assert delegated_key_ids(world, gun)[role] == {key.tuf_key_id}
    trust_dir = world.tmp / "carol"
    trust_dir.mkdir()
    (trust_dir / "key.pem").write_bytes(pem)
    world.cli(trust_dir, "key", "import", str(trust_dir / "key.pem"))
    for signed_role in (role, RELEASES):
        world.cli(trust_dir, "addhash", gun, "4.0", "1234", "--sha256", C, "-r", signed_role, "-p")

    result = world.evaluate(f"{gun}:4.0")
    if dt.datetime.now(dt.UTC) >= key.expires_at:
        pytest.fail(f"signing took longer than the certificate's {lifetime}; raise it")
    assert result["decision"] == "allowed", result
    assert signer_keys(result) == {("carol", key.id)}
    before = generation()
    time.sleep(max(0.0, (key.expires_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)

    result = world.evaluate(f"{gun}:4.0")
    assert result["decision"] == "denied", result
    assert reasons(result) == [KEY_EXPIRED], result
    assert world.decision(f"{gun}:4.0") == "denied"
    assert generation() == before  # nothing told evaluations: the clock alone did it


def short_lived_key(lifetime: dt.timedelta) -> tuple[bytes, str]:
    """A P-256 key (PKCS#8 PEM) and a self-signed leaf certificate valid for ``lifetime``,
    registered as a user registers a key made elsewhere."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carol")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + lifetime)
        .sign(private_key, hashes.SHA256())
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --- Docker reads it --------------------------------------------------------------------


class TlsProxy:
    """notary-server behind HTTPS, since Docker's CLI takes only an https trust server
    ("valid https URL required for trust server"): a certificate for 127.0.0.1 from a CA
    of the stack's, and every request passed on to the plain-HTTP test server as it is."""

    def __init__(self, upstream: str, certs: Path) -> None:
        """``certs``: the test Notary stack's own CA and its server certificate (for
        127.0.0.1), which ``devtools.notary`` makes for the stack's TLS."""
        self.upstream = urlsplit(upstream)
        self.ca_file = certs / "ca.crt"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs / "server.crt", certs / "server.key")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = forward

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"https://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "TlsProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def docker_trust_inspect(proxy: TlsProxy, config: Path, gun: str) -> list[dict]:
    """``docker trust inspect <gun>``: Docker's CLI reads Notary itself, no daemon needed.

    It trusts the CA in ``$DOCKER_CONFIG/tls/<host:port>/ca.crt`` for the trust server."""
    certs = config / "tls" / proxy.host
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "ca.crt").write_bytes(proxy.ca_file.read_bytes())
    env = {
        **os.environ,
        "DOCKER_CONFIG": str(config),
        "DOCKER_CONTENT_TRUST_SERVER": proxy.url,
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",  # no daemon is asked anything
    }
    result = subprocess.run(
        [shutil.which("docker") or "docker", "trust", "inspect", gun],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_docker_trust_inspect_shows_each_signer_under_their_own_role(
    world, ci, tmp_path, notary_server
):
    require(shutil.which("docker") is not None, "the docker CLI (Debian package docker.io)")
    gun = ci
    jenkins, alice = world.people["jenkins"], world.people["alice"]
    world.sign("jenkins", gun, "1.0", A)
    world.sign("alice", gun, "2.0", B)
    world.sign("jenkins", gun, "3.0", C, jenkins.role)
    world.sign("alice", gun, "3.0", C)  # both sign 3.0; alice puts it in releases

    with TlsProxy(world.notary_url, notary_server.state_dir / "certs") as proxy:
        (inspected,) = docker_trust_inspect(proxy, tmp_path / "docker", gun)

    assert inspected["Name"] == gun
    signers = {signer["Name"]: signer["Keys"] for signer in inspected["Signers"]}
    assert set(signers) == {"jenkins", "alice"}, inspected["Signers"]
    for person in (jenkins, alice):
        name = person.role.removeprefix("targets/")
        assert [key["ID"] for key in signers[name]] == [person.key.id], (name, signers[name])
    tags = {
        row["SignedTag"]: (row["Digest"], sorted(row["Signers"])) for row in inspected["SignedTags"]
    }
    assert tags == {
        "1.0": (A, ["jenkins"]),
        "2.0": (B, ["alice"]),
        "3.0": (C, ["alice", "jenkins"]),
    }, inspected["SignedTags"]
    administrative = {
        entry["Name"]: [key["ID"] for key in entry["Keys"]]
        for entry in inspected["AdministrativeKeys"]
    }
    assert administrative == {
        # Docker names the root by its x509 key ID (the certificate is per GUN), not the
        # canonical ID Gatehouse shows.
        "Root": role_file(world, gun, "root")["signed"]["roles"]["root"]["keyids"],
        "Repository": [Repository.objects.get(gun=gun).targets_key.key_id],
    }
    # The daemon.json snippet pins the GUN to that same ID, so an engine with it accepts
    # the root Gatehouse accepts.
    root_keys = (
        world.api(world.admin)
        .get("/api/v1/trust/root/")
        .json()["daemon_json"]["content-trust"]["trust-pinning"]["root-keys"]
    )
    assert root_keys[gun] == administrative["Root"]
