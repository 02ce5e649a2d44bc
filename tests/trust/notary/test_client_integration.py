"""``NotaryClient`` against a real notary-server + notary-signer, checked with the real CLI.

Whatever the client publishes must be what ``notary`` reads from a fresh trust directory,
and whatever the CLI made, the client must be able to extend (docs/notary-protocol.md).
"""

import datetime as dt
import re
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.ports import free_port
from tests.conftest import NOTARY_CLI_PASSPHRASES
from trust.notary import keys
from trust.notary.client import NotaryClient
from trust.notary.errors import NotaryRejected, NotaryUnavailable, RepositoryExists
from trust.notary.http_transport import HttpTransport
from trust.notary.private_keys import load_private_key_pem

pytestmark = pytest.mark.notary

RELEASES, CI = "targets/releases", "targets/ci"


class Delegate:
    """A delegation key as a person holds it: a self-signed P-256 certificate and its key."""

    def __init__(self, name: str) -> None:
        self.private_key = keys.generate_ecdsa_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self.private_key, hashes.SHA256())
        )
        self.public = keys.certificate_tuf_key(self.certificate)
        self.cli_id = keys.canonical_key_id(self.certificate)  # what the CLI prints

    def import_into(self, cli, trust_dir: Path, gun: str) -> None:
        """``notary key import`` into the delegate's own trust directory."""
        trust_dir.mkdir(parents=True, exist_ok=True)
        pem = trust_dir / "delegate.pem"
        pem.write_bytes(
            self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cli(trust_dir, "key", "import", str(pem), "-r", RELEASES, "-g", gun)


def cli_private_key(trust_dir: Path, role: str) -> ec.EllipticCurvePrivateKey:
    """A key the CLI made: an ``ENCRYPTED PRIVATE KEY`` PEM with ``role:``/``gun:`` headers."""
    passphrase = NOTARY_CLI_PASSPHRASES[f"NOTARY_{role.upper()}_PASSPHRASE"]
    for path in sorted((trust_dir / "private").rglob("*.key")):
        pem = path.read_text()
        if re.search(rf"^role: {re.escape(role)}$", pem, re.MULTILINE):
            return load_private_key_pem(pem, passphrase)
    raise AssertionError(f"no {role} key in {trust_dir}")


def delegation_rows(listing: str) -> dict[str, set[str]]:
    """``notary delegation list`` output -> role -> canonical key IDs."""
    rows: dict[str, set[str]] = {}
    role = ""
    for line in listing.splitlines():
        if line.startswith("targets/"):
            role = line.split()[0]
        for key_id in re.findall(r"\b[0-9a-f]{64}\b", line):
            rows.setdefault(role, set()).add(key_id)
    return rows


def target_names(listing: str) -> set[str]:
    return {line.split()[0] for line in listing.splitlines()[2:] if line.strip()}


@pytest.fixture
def transport(notary_server):
    return HttpTransport(notary_server.url)


@pytest.fixture
def client(transport):
    return NotaryClient(transport)


@pytest.fixture
def owner():
    """The repository owner's keys: root, targets, and the custodian (docs/notary-protocol.md,
    "The lock-out hazard")."""
    return {
        "root": keys.generate_ecdsa_key(),
        "targets": keys.plain_signing_key(keys.generate_ecdsa_key()),
        "custodian": keys.plain_signing_key(keys.generate_ecdsa_key()),
    }


def initialize(client, gun, owner, delegations):
    return client.initialize(
        gun,
        root_key=keys.root_signing_key(owner["root"], gun),
        targets_key=owner["targets"],
        delegations={role: [d.public for d in ds] for role, ds in delegations.items()},
    )


def set_delegations(client, gun, owner, delegations, state=None):
    return client.set_delegations(
        gun,
        {role: [d.public for d in ds] for role, ds in delegations.items()},
        targets_key=owner["targets"],
        custodian=owner["custodian"],
        state=state,
    )


# --- 1. initialise ------------------------------------------------------------------------


def test_initialize_publishes_in_three_requests_what_the_cli_reads(
    client, transport, owner, notary_gun, notary_cli
):
    alice, bob = Delegate("alice"), Delegate("bob")

    initialize(client, notary_gun, owner, {RELEASES: [alice], CI: [bob]})

    assert transport.requests_sent == 3
    listing = notary_cli("list", notary_gun, fresh=True)
    assert "No targets present in this repository." in listing.stdout
    delegations = notary_cli("delegation", "list", notary_gun, fresh=True)
    assert delegation_rows(delegations.stdout) == {RELEASES: {alice.cli_id}, CI: {bob.cli_id}}


# --- 2. extend a repository the CLI made ----------------------------------------------------


def test_delegations_on_a_cli_repository_need_its_targets_key(
    client, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    cli_dir = tmp_path / "owner"
    notary_cli_in(cli_dir, "init", notary_gun, "-p")
    notary_cli_in(cli_dir, "key", "rotate", notary_gun, "snapshot", "-r")
    alice = Delegate("alice")

    with pytest.raises(NotaryRejected) as rejected:
        set_delegations(client, notary_gun, owner, {RELEASES: [alice]})  # our targets key
    assert rejected.value.code == "INVALID_UPDATE"
    assert "valid signatures did not meet threshold for targets" in str(rejected.value)
    assert delegation_rows(notary_cli("delegation", "list", notary_gun, fresh=True).stdout) == {}

    cli_targets = keys.plain_signing_key(cli_private_key(cli_dir, "targets"))
    set_delegations(client, notary_gun, {**owner, "targets": cli_targets}, {RELEASES: [alice]})

    listing = notary_cli("delegation", "list", notary_gun, fresh=True)
    assert delegation_rows(listing.stdout) == {RELEASES: {alice.cli_id}}
    # The owner's own CLI still publishes on top of what the client wrote.
    notary_cli_in(cli_dir, "addhash", notary_gun, "v1", "3", "--sha256", "a1" * 32, "-p")
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"v1"}


# --- 3. never lock a delegate out (docs/notary-protocol.md, "The lock-out hazard") ----------


def test_removing_the_last_signer_leaves_the_other_delegate_able_to_publish(
    client, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    jane, mark = Delegate("jane"), Delegate("mark")
    jane_dir, mark_dir = tmp_path / "jane", tmp_path / "mark"
    initialize(client, notary_gun, owner, {RELEASES: [jane, mark]})
    jane.import_into(notary_cli_in, jane_dir, notary_gun)
    mark.import_into(notary_cli_in, mark_dir, notary_gun)
    publish = ("-r", RELEASES, "-p")
    notary_cli_in(mark_dir, "addhash", notary_gun, "m1", "3", "--sha256", "a1" * 32, *publish)
    notary_cli_in(jane_dir, "addhash", notary_gun, "j2", "3", "--sha256", "a2" * 32, *publish)

    removed = set_delegations(client, notary_gun, owner, {RELEASES: [mark]})

    assert removed.reset_roles == (RELEASES,)
    # Mark's trust directory still caches the file Jane signed; he publishes all the same.
    notary_cli_in(mark_dir, "addhash", notary_gun, "m3", "3", "--sha256", "a3" * 32, *publish)
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"m3"}
    # Once Mark has signed, the custodian key leaves the role again.
    settled = set_delegations(client, notary_gun, owner, {RELEASES: [mark]})
    assert settled.changed
    assert settled.reset_roles == ()
    assert settled.state.delegations() == {RELEASES: {mark.public.key_id}}
    listing = notary_cli("delegation", "list", notary_gun, fresh=True)
    assert delegation_rows(listing.stdout) == {RELEASES: {mark.cli_id}}
    notary_cli_in(mark_dir, "addhash", notary_gun, "m4", "3", "--sha256", "a4" * 32, *publish)
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"m3", "m4"}


def test_a_role_recreated_with_other_keys_continues_above_its_old_version(
    client, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    mark, nora = Delegate("mark"), Delegate("nora")
    mark_dir, nora_dir = tmp_path / "mark", tmp_path / "nora"
    initialize(client, notary_gun, owner, {RELEASES: [mark]})
    mark.import_into(notary_cli_in, mark_dir, notary_gun)
    publish = ("-r", RELEASES, "-p")
    notary_cli_in(mark_dir, "addhash", notary_gun, "m1", "3", "--sha256", "a1" * 32, *publish)
    notary_cli_in(mark_dir, "addhash", notary_gun, "m2", "3", "--sha256", "a2" * 32, *publish)

    assert set_delegations(client, notary_gun, owner, {}).changed
    assert delegation_rows(notary_cli("delegation", "list", notary_gun, fresh=True).stdout) == {}
    recreated = set_delegations(client, notary_gun, owner, {RELEASES: [nora]})

    # Mark's file (v2) does not verify with Nora's key: a reset at v3 goes out with the role.
    assert recreated.reset_roles == (RELEASES,)
    nora.import_into(notary_cli_in, nora_dir, notary_gun)
    notary_cli_in(nora_dir, "addhash", notary_gun, "n1", "3", "--sha256", "b1" * 32, *publish)
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"n1"}
    # Mark is out: his publish is refused, and readers never see his old targets again.
    refused = notary_cli_in(
        mark_dir, "addhash", notary_gun, "m3", "3", "--sha256", "a3" * 32, *publish, check=False
    )
    assert refused.returncode != 0
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"n1"}


# --- 4. requests per change -----------------------------------------------------------------


def test_a_known_state_makes_no_change_free_and_adding_a_key_one_request(
    client, transport, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    jane, mark = Delegate("jane"), Delegate("mark")
    state = initialize(client, notary_gun, owner, {RELEASES: [jane]})
    jane.import_into(notary_cli_in, tmp_path / "jane", notary_gun)
    notary_cli_in(
        tmp_path / "jane", "addhash", notary_gun, "j1", "3", "--sha256", "a1" * 32,
        "-r", RELEASES, "-p",
    )  # fmt: skip

    before = transport.requests_sent
    unchanged = set_delegations(client, notary_gun, owner, {RELEASES: [jane]}, state=state)
    assert not unchanged.changed
    assert transport.requests_sent == before

    added = set_delegations(client, notary_gun, owner, {RELEASES: [jane, mark]}, state=state)
    assert added.changed
    assert transport.requests_sent == before + 1
    listing = notary_cli("delegation", "list", notary_gun, fresh=True)
    assert delegation_rows(listing.stdout) == {RELEASES: {jane.cli_id, mark.cli_id}}
    # Jane's target survives: adding a key never resets the role.
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"j1"}

    again = set_delegations(client, notary_gun, owner, {RELEASES: [mark, jane]}, state=added.state)
    assert not again.changed
    assert transport.requests_sent == before + 1


# --- 5. errors, delete, snapshot rotation ---------------------------------------------------


def test_rejected_publishes_carry_the_servers_code(client, owner, notary_gun):
    initialize(client, notary_gun, owner, {})

    with pytest.raises(RepositoryExists) as exists:
        initialize(client, notary_gun, {**owner, "root": keys.generate_ecdsa_key()}, {})
    assert exists.value.code == "INVALID_UPDATE"
    assert exists.value.status == 400

    stranger = {**owner, "targets": keys.plain_signing_key(keys.generate_ecdsa_key())}
    with pytest.raises(NotaryRejected) as rejected:
        set_delegations(client, notary_gun, stranger, {RELEASES: [Delegate("eve")]})
    assert rejected.value.code == "INVALID_UPDATE"
    assert "valid signatures did not meet threshold for targets" in str(rejected.value)
    assert client.read_state(notary_gun).delegations() == {}


def test_a_server_that_is_down_is_unavailable(notary_gun):
    down = NotaryClient(HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=2))

    with pytest.raises(NotaryUnavailable):
        down.read_state(notary_gun)


def test_delete_removes_the_trust_data(client, owner, notary_gun, notary_cli):
    initialize(client, notary_gun, owner, {RELEASES: [Delegate("alice")]})

    client.delete(notary_gun)
    client.delete(f"test.gatehouse/{uuid.uuid4().hex}")  # unknown: fine too

    listing = notary_cli("list", notary_gun, fresh=True, check=False)
    assert listing.returncode != 0
    assert f"does not have trust data for {notary_gun}" in listing.stdout + listing.stderr


def test_rotating_the_snapshot_key_of_a_cli_repository_lets_the_client_delegate(
    client, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    cli_dir = tmp_path / "owner"
    notary_cli_in(cli_dir, "init", notary_gun)
    notary_cli_in(cli_dir, "publish", notary_gun)  # the snapshot key stays with the CLI
    cli_owner = {
        **owner,
        "targets": keys.plain_signing_key(cli_private_key(cli_dir, "targets")),
    }
    alice = Delegate("alice")
    # The server cannot sign a snapshot it does not hold the key of (with notary-signer it
    # says "key … not found"; docs/notary-protocol.md, "Server-managed snapshot and timestamp",
    # quotes the built-in trust service's wording).
    with pytest.raises(NotaryRejected) as rejected:
        set_delegations(client, notary_gun, cli_owner, {RELEASES: [alice]})
    assert rejected.value.code == "INVALID_UPDATE"

    client.rotate_snapshot_key(notary_gun, root_key=cli_private_key(cli_dir, "root"))
    set_delegations(client, notary_gun, cli_owner, {RELEASES: [alice]})

    listing = notary_cli("delegation", "list", notary_gun, fresh=True)
    assert delegation_rows(listing.stdout) == {RELEASES: {alice.cli_id}}
    assert "No targets present" in notary_cli("list", notary_gun, fresh=True).stdout


# --- 6. token authentication (docs/notary-protocol.md, "Token authentication") --------------


def test_token_auth_caches_one_token_per_scope(notary_token_server, notary_token_issuer, owner):
    gun = f"test.gatehouse/{uuid.uuid4().hex}"
    transport = HttpTransport(notary_token_server.url, username="alice", password="wonderland")
    client = NotaryClient(transport)
    alice, bob = Delegate("alice"), Delegate("bob")
    asked = len(notary_token_issuer.requests)

    state = initialize(client, gun, owner, {RELEASES: [alice]})
    assert client.read_state(gun).delegations() == state.delegations()
    set_delegations(client, gun, owner, {RELEASES: [alice, bob]})
    assert client.read_state(gun).delegations() == {
        RELEASES: {alice.public.key_id, bob.public.key_id}
    }
    client.delete(gun)

    assert notary_token_issuer.requests[asked:] == [
        ("alice", f"repository:{gun}:push,pull"),
        ("alice", f"repository:{gun}:pull"),
        ("alice", f"repository:{gun}:*"),
    ]


def test_token_auth_with_wrong_credentials_is_unauthorized(
    notary_token_server, notary_token_issuer, owner
):
    gun = f"test.gatehouse/{uuid.uuid4().hex}"
    transport = HttpTransport(notary_token_server.url, username="alice", password="rabbit-hole")

    with pytest.raises(NotaryRejected) as rejected:
        initialize(NotaryClient(transport), gun, owner, {})
    assert rejected.value.code == "UNAUTHORIZED"
    assert notary_token_issuer.requests[-1] == (None, f"repository:{gun}:push,pull")


def test_token_minter_needs_no_token_service(notary_token_server, notary_token_issuer, owner):
    gun = f"test.gatehouse/{uuid.uuid4().hex}"
    transport = HttpTransport(notary_token_server.url, token_minter=notary_token_issuer.minter)
    client = NotaryClient(transport)
    asked = len(notary_token_issuer.requests)

    initialize(client, gun, owner, {RELEASES: [Delegate("alice")]})

    assert RELEASES in client.read_state(gun).delegations()
    assert len(notary_token_issuer.requests) == asked


def test_a_reset_releases_keeps_the_tags_remaining_signers_signed_in_their_own_roles(
    client, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    """Jane published releases last, then leaves: the custodian's reset keeps mark's tag
    (his own role names it identically) and drops hers and the one nobody vouches for."""
    jane, mark = Delegate("jane"), Delegate("mark")
    jane_dir, mark_dir = tmp_path / "jane", tmp_path / "mark"
    own = {"targets/jane": [jane], "targets/mark": [mark]}
    initialize(client, notary_gun, owner, {RELEASES: [jane, mark], **own})
    jane.import_into(notary_cli_in, jane_dir, notary_gun)
    mark.import_into(notary_cli_in, mark_dir, notary_gun)
    for directory, tag, digest, role in (
        (mark_dir, "m1", "a1", "targets/mark"),
        (mark_dir, "loose", "a9", None),
        (jane_dir, "j1", "a2", "targets/jane"),
    ):
        roles = ("-r", RELEASES) + (("-r", role) if role else ())
        notary_cli_in(
            directory, "addhash", notary_gun, tag, "3", "--sha256", digest * 32, *roles, "-p"
        )

    removed = set_delegations(client, notary_gun, owner, {RELEASES: [mark], "targets/mark": [mark]})

    assert removed.reset_roles == (RELEASES,)
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"m1"}
    notary_cli_in(mark_dir, "addhash", notary_gun, "m2", "3", "--sha256", "a3" * 32, "-r",
                  RELEASES, "-p")  # fmt: skip
    assert target_names(notary_cli("list", notary_gun, fresh=True).stdout) == {"m1", "m2"}


def test_the_history_walk_sees_every_version_once(
    client, owner, notary_gun, notary_cli_in, tmp_path
):
    """Versions replaced before anyone read them are in the walk; a second walk from where
    the first stopped fetches only what is new."""
    mark = Delegate("mark")
    mark_dir = tmp_path / "mark"
    initialize(client, notary_gun, owner, {RELEASES: [mark]})
    mark.import_into(notary_cli_in, mark_dir, notary_gun)
    for tag, digest in (("1.0", "a1"), ("2.0", "a2")):
        notary_cli_in(mark_dir, "addhash", notary_gun, tag, "3", "--sha256", digest * 32, "-r",
                      RELEASES, "-p")  # fmt: skip

    first = client.walk_history(notary_gun)

    versions = [file.version for role, file in first.files if role == RELEASES]
    assert versions == [1, 2]
    assert first.last_change > 0
    assert set(first.role_hashes) == {RELEASES}

    notary_cli_in(mark_dir, "addhash", notary_gun, "3.0", "3", "--sha256", "a3" * 32, "-r",
                  RELEASES, "-p")  # fmt: skip
    second = client.walk_history(notary_gun, after=first.last_change, role_hashes=first.role_hashes)
    assert [file.version for _, file in second.files] == [3]
    assert (
        client.walk_history(
            notary_gun, after=second.last_change, role_hashes=second.role_hashes
        ).files
        == ()
    )


def test_a_leaver_cannot_take_along_a_repointing_of_another_signers_tag(
    client, owner, notary_gun, notary_cli, notary_cli_in, tmp_path
):
    """Jane repoints mark's m1 in releases, then leaves: the reset puts back what mark's own
    role names for m1."""
    jane, mark = Delegate("jane"), Delegate("mark")
    jane_dir, mark_dir = tmp_path / "jane", tmp_path / "mark"
    own = {"targets/jane": [jane], "targets/mark": [mark]}
    initialize(client, notary_gun, owner, {RELEASES: [jane, mark], **own})
    jane.import_into(notary_cli_in, jane_dir, notary_gun)
    mark.import_into(notary_cli_in, mark_dir, notary_gun)
    notary_cli_in(mark_dir, "addhash", notary_gun, "m1", "3", "--sha256", "a1" * 32, "-r",
                  RELEASES, "-r", "targets/mark", "-p")  # fmt: skip
    notary_cli_in(jane_dir, "addhash", notary_gun, "m1", "3", "--sha256", "b2" * 32, "-r",
                  RELEASES, "-p")  # fmt: skip
    assert "b2" * 32 in notary_cli("list", notary_gun, fresh=True).stdout

    set_delegations(client, notary_gun, owner, {RELEASES: [mark], "targets/mark": [mark]})

    listed = notary_cli("list", notary_gun, fresh=True).stdout
    assert target_names(listed) == {"m1"}
    assert "a1" * 32 in listed
    assert "b2" * 32 not in listed
