"""One signing role per user: its name, when it is given, what each repository delegates to
it, and the migration that moved existing installations from team roles to it."""

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts.services import user_deactivate
from bundles.models import PublicKey, SigningRole
from bundles.role_names import NAME_BASE_MAX, role_name_base, role_name_candidates
from bundles.selectors import signing_role_of
from bundles.services import (
    bundle_issue,
    public_key_register,
    public_key_revoke,
    public_key_update,
    signing_role_ensure,
)
from tests.bundles.helpers import registration
from tests.factories import make_team, make_user
from trust.models import Job, Repository
from trust.selectors import RELEASES, desired_delegations
from trust.services import jobs

ROLE_SYNTAX = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")  # Notary's, as SigningRole checks


def self_signed(common_name: str = "someone", *, days: int = 30) -> str:
    """A leaf certificate for a key made elsewhere, as a user registers one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def role_name(user) -> str | None:
    role = signing_role_of(user)
    return role.name if role else None


# --- Names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "base"),
    [
        ("jenkins", "jenkins"),
        ("Jenkins.CI", "jenkins-ci"),
        ("jenkins-ci", "jenkins-ci"),
        ("ci_bot", "ci_bot"),
        ("alice@example.com", "alice-example-com"),
        ("a+b", "a-b"),
        ("Zoë", "zoe"),
        ("__x__", "x"),
        ("-.-", "user"),
        ("ß", "user"),  # nothing ASCII is left
        ("releases", "releases"),  # a base; never a name, see below
        ("a" * 150, "a" * NAME_BASE_MAX),
        ("a" * 47 + ".bcd", "a" * 47),  # cut to 48, then no trailing separator
    ],
)
def test_role_name_base_is_the_username_in_notarys_role_syntax(username, base):
    assert role_name_base(username) == base
    assert ROLE_SYNTAX.fullmatch(base)
    for name, _ in zip(role_name_candidates(username), range(12), strict=False):
        assert ROLE_SYNTAX.fullmatch(name), name
        assert name != "releases"


def test_candidates_suffix_from_two_and_skip_releases():
    first = role_name_candidates("jenkins")
    assert [next(first) for _ in range(3)] == ["jenkins", "jenkins-2", "jenkins-3"]
    releases = role_name_candidates("Releases")
    assert [next(releases) for _ in range(2)] == ["releases-2", "releases-3"]


@pytest.mark.django_db
def test_colliding_usernames_get_suffixes_in_order():
    users = [make_user(name) for name in ("Jenkins.CI", "jenkins-ci", "jenkins+ci", "JENKINS_CI")]
    names = [signing_role_ensure(user).name for user in users]
    assert names == ["jenkins-ci", "jenkins-ci-2", "jenkins-ci-3", "jenkins_ci"]
    assert all(ROLE_SYNTAX.fullmatch(name) for name in names)


@pytest.mark.django_db
def test_a_user_named_releases_never_gets_releases():
    user = make_user("releases")
    assert signing_role_ensure(user).name == "releases-2"
    assert signing_role_ensure(user).role == "targets/releases-2"


@pytest.mark.django_db
def test_a_name_is_stable_and_never_given_to_anyone_else(admin):
    bob = make_user("Bob")
    first = signing_role_ensure(bob)
    assert signing_role_ensure(bob) == first
    assert signing_role_of(bob) == first
    # Further signing keys, revocations and deactivation leave it as it is.
    key = bundle_issue(user=bob, signing=True).key
    public_key_revoke(actor=admin, key=key)
    user_deactivate(actor=admin, user=bob)
    assert SigningRole.objects.get(pk=first.pk).user_id == bob.pk
    assert signing_role_of(bob).name == "bob"
    # Another user whose name maps to the same base never gets it.
    other = make_user("bob.")
    assert signing_role_ensure(other).name == "bob-2"
    assert SigningRole.objects.filter(name="bob").count() == 1


@pytest.mark.django_db
def test_names_reserved_by_rows_without_a_user_are_skipped():
    SigningRole.objects.create(name="ci", user=None)  # a team role an earlier version made
    SigningRole.objects.create(name="ci-2", user=None)
    user = make_user("ci")
    assert signing_role_ensure(user).name == "ci-3"
    assert set(SigningRole.objects.filter(user=None).values_list("name", flat=True)) == {
        "ci",
        "ci-2",
    }


@pytest.mark.django_db
def test_a_taken_name_with_a_shared_prefix_does_not_confuse_the_suffixes():
    early = make_user("jenkins-2")  # its base is "jenkins-2" itself
    assert signing_role_ensure(early).name == "jenkins-2"
    assert signing_role_ensure(make_user("jenkins")).name == "jenkins"
    assert signing_role_ensure(make_user("Jenkins.")).name == "jenkins-3"


# --- When a role is given -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_signing_bundle_gives_a_role_a_plain_one_does_not():
    plain, signing = make_user("plain"), make_user("signer")
    bundle_issue(user=plain, signing=False)
    assert role_name(plain) is None
    bundle_issue(user=signing, signing=True)
    assert role_name(signing) == "signer"
    bundle_issue(user=signing, signing=True)  # a second key: the same role
    assert SigningRole.objects.filter(user=signing).count() == 1


@pytest.mark.django_db
def test_registering_a_signing_key_gives_a_role(admin):
    plain, signing = make_user("plain"), make_user("signer")
    public_key_register(actor=admin, user=plain, **registration(admin), signing=False)
    assert role_name(plain) is None
    public_key_register(actor=admin, user=signing, **registration(admin), signing=True)
    assert role_name(signing) == "signer"


@pytest.mark.django_db
def test_marking_a_key_signing_gives_a_role(admin):
    user = make_user("later")
    key = bundle_issue(user=user, signing=False).key
    public_key_update(actor=admin, key=key, label="renamed")
    assert role_name(user) is None
    public_key_update(actor=admin, key=key, is_signing_key=True)
    assert role_name(user) == "later"
    public_key_update(actor=admin, key=key, is_signing_key=False)
    assert role_name(user) == "later"  # kept for good


# --- What each repository delegates ---------------------------------------------------------


@pytest.mark.django_db
def test_desired_delegations_are_each_signers_own_keys_and_releases_all(admin):
    alice, bob, carol, dave, erin, frank = (
        make_user(name) for name in ("alice", "bob", "carol", "dave", "erin", "frank")
    )
    ci = make_team("ci", members=(alice, bob, carol, erin), actor=admin)
    dev = make_team("dev", members=(alice, frank), actor=admin)
    make_team("ops", members=(dave,), actor=admin)
    repository = Repository.objects.create(gun="registry.example.com/ci/app", state="ready")
    repository.signer_teams.set([ci, dev])

    alice_keys = [bundle_issue(user=alice, signing=True).key for _ in range(2)]
    bundle_issue(user=alice, signing=False)  # not signing
    bob_key = bundle_issue(user=bob, signing=True).key
    public_key_revoke(actor=admin, key=bundle_issue(user=bob, signing=True).key)  # revoked
    expired = bundle_issue(user=bob, signing=True).key
    PublicKey.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    bundle_issue(user=carol, signing=True)
    user_deactivate(actor=admin, user=carol)  # deactivated
    bundle_issue(user=dave, signing=True)  # in no signer team
    bundle_issue(user=erin, signing=False)  # a member without a signing key
    unmarked = bundle_issue(user=frank, signing=True).key
    public_key_update(actor=admin, key=unmarked, is_signing_key=False)  # unmarked

    desired = {
        role: [key.id for key in keys] for role, keys in desired_delegations(repository).items()
    }
    assert desired == {
        "targets/alice": sorted(key.id for key in alice_keys),  # once, though in two teams
        "targets/bob": [bob_key.id],
        RELEASES: sorted([*(key.id for key in alice_keys), bob_key.id]),
    }


@pytest.mark.django_db
def test_desired_delegations_follow_the_names_given(admin):
    users = [make_user(name) for name in ("Jenkins.CI", "jenkins-ci")]
    team = make_team("ci", members=tuple(users), actor=admin)
    keys = [bundle_issue(user=user, signing=True).key for user in users]
    repository = Repository.objects.create(gun="registry.example.com/ci/tool", state="ready")
    repository.signer_teams.set([team])
    desired = desired_delegations(repository)
    assert {role: [k.id for k in ks] for role, ks in desired.items() if role != RELEASES} == {
        "targets/jenkins-ci": [keys[0].id],
        "targets/jenkins-ci-2": [keys[1].id],
    }


@pytest.mark.django_db
def test_no_signing_keys_no_delegations(admin):
    team = make_team("ci", members=(make_user("idle"),), actor=admin)
    repository = Repository.objects.create(gun="registry.example.com/ci/idle", state="ready")
    repository.signer_teams.set([team])
    assert desired_delegations(repository) == {}


# --- The migration ------------------------------------------------------------------------

BEFORE = [("trust", "0003_token_key_rotation"), ("bundles", "0001_initial")]


def _leaves(executor: MigrationExecutor) -> list[tuple[str, str]]:
    return executor.loader.graph.leaf_nodes()


@pytest.fixture
def migrated_back(transactional_db):
    """The schema as it was before one signing role per user; forward again afterwards,
    whatever the test did, so the rest of the suite finds the schema it expects."""
    executor = MigrationExecutor(connection)
    leaves = _leaves(executor)
    before = [node for node in leaves if node[0] not in {"trust", "bundles"}] + BEFORE
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    try:
        yield executor.loader.project_state(before).apps, leaves
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)


def test_the_migration_reserves_team_names_gives_roles_and_queues_one_sync_each(
    migrated_back, monkeypatch
):
    apps, leaves = migrated_back
    User = apps.get_model("accounts", "User")
    Team = apps.get_model("accounts", "Team")
    Membership = apps.get_model("accounts", "Membership")
    HistoricalKey = apps.get_model("bundles", "PublicKey")
    HistoricalRepository = apps.get_model("trust", "Repository")
    HistoricalJob = apps.get_model("trust", "Job")

    ci, dev = Team.objects.create(name="ci"), Team.objects.create(name="dev")
    serial = iter(range(1, 100))

    def user(username: str, *, signing: bool | None, active: bool = True, teams=()):
        made = User.objects.create(username=username, password="!", is_active=active)
        for team in teams:
            Membership.objects.create(team=team, user=made)
        if signing is not None:
            number = next(serial)
            HistoricalKey.objects.create(
                id=f"{number:064x}",
                tuf_key_id=f"{number + 1000:064x}",
                user=made,
                label="bundle",
                is_signing_key=signing,
                algorithm="ecdsa-p256",
                certificate=self_signed(username),
                source="issued",
                expires_at=timezone.now() + dt.timedelta(days=30),
            )
        return made

    user("jenkins", signing=True, teams=(ci,))
    user("Jenkins.CI", signing=True, teams=(ci,))
    user("ci", signing=True, teams=(ci,))  # named like a team role published before
    user("releases", signing=True)
    user("gone", signing=True, active=False)
    user("viewer", signing=False, teams=(dev,))
    user("nokey", signing=None, teams=(dev,))

    def repository(gun: str, state: str):
        made = HistoricalRepository.objects.create(gun=gun, state=state)
        made.signer_teams.set([ci])
        return made

    ready = [repository(f"registry.example.com/ci/app{n}", "ready") for n in range(3)]
    repository("registry.example.com/ci/pending", "pending")
    repository("registry.example.com/ci/failed", "failed")
    already = repository("registry.example.com/ci/queued", "ready")
    just_now = timezone.now()
    HistoricalJob.objects.create(
        kind="sync", repository=already, gun=already.gun, cause="earlier", enqueued_at=just_now
    )

    MigrationExecutor(connection).migrate(leaves)

    reserved = SigningRole.objects.filter(user=None).values_list("name", flat=True)
    assert sorted(reserved) == ["ci", "dev"]
    given = dict(SigningRole.objects.exclude(user=None).values_list("user__username", "name"))
    assert given == {
        "jenkins": "jenkins",
        "Jenkins.CI": "jenkins-ci",
        "ci": "ci-2",
        "releases": "releases-2",
        "gone": "gone",
    }
    assert all(ROLE_SYNTAX.fullmatch(name) for name in given.values())

    queued = Job.objects.filter(kind="sync", status="queued")
    per_repository = {job.gun: job for job in queued}
    assert len(per_repository) == queued.count()  # one each
    assert set(per_repository) == {r.gun for r in ready} | {already.gun}
    a_day_ago = timezone.now() - dt.timedelta(days=1)
    for made in ready:
        job = per_repository[made.gun]
        assert job.repository_id == made.pk
        assert job.cause == "one signing role per user"
        assert abs(job.enqueued_at - a_day_ago) < dt.timedelta(minutes=5), job.enqueued_at
    assert per_repository[already.gun].cause == "earlier"  # absorbed the migration's
    assert per_repository[already.gun].enqueued_at == just_now

    # The sweep sends the migration's jobs, which nobody sent; not the one sent just now.
    sent: list[int] = []
    monkeypatch.setattr(jobs, "_send", lambda job_ids, **kw: sent.extend(job_ids))
    assert jobs.jobs_requeue_stale() == len(ready)
    assert sorted(sent) == sorted(per_repository[r.gun].pk for r in ready)
    for made in ready:
        job = Job.objects.get(pk=per_repository[made.gun].pk)
        assert job.enqueued_at > timezone.now() - dt.timedelta(minutes=1)
    assert jobs.jobs_requeue_stale() == 0  # sent now: not stale any more


def test_the_migration_keeps_existing_certificates_valid_from(migrated_back):
    """``bundles.0002`` fills ``valid_from`` from each stored certificate's notBefore."""
    apps, leaves = migrated_back
    User = apps.get_model("accounts", "User")
    HistoricalKey = apps.get_model("bundles", "PublicKey")
    pem = self_signed("old")
    not_before = x509.load_pem_x509_certificate(pem.encode()).not_valid_before_utc
    owner = User.objects.create(username="old", password="!")
    HistoricalKey.objects.create(
        id="f" * 64,
        tuf_key_id="e" * 64,
        user=owner,
        label="old",
        is_signing_key=True,
        algorithm="ecdsa-p256",
        certificate=pem,
        source="issued",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    MigrationExecutor(connection).migrate(leaves)
    assert PublicKey.objects.get(pk="f" * 64).valid_from == not_before
    assert SigningRole.objects.get(user_id=owner.pk).name == "old"
