"""Notary follows the directory with nobody in between: a real slapd, a real Celery worker
running beat on Redis, a real notary-server, and the real ``notary`` CLI signing.

alice and bob are in the LDAP group ``ci``, which is mapped to the team ``ci`` that signs a
repository. Only the scheduled sync (every ``SYNC_SECONDS``) reads the directory after
they log in: when alice is disabled there, her key leaves the repository's delegations on
Notary and her signature stops counting; while the directory is down, nothing changes.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, User
from accounts.services import team_create
from audit.models import AuditEntry
from bundles.models import PublicKey
from devtools.slapd import DISABLED_FILTER, Slapd
from directory import services
from directory.models import SyncRun
from policy.services import policy_update
from tests.conftest import require
from tests.directory.conftest import ldap_settings_for
from tests.trust.conftest import start_worker, stop_worker, worker_env  # noqa: F401 - fixture
from tests.trust.helpers import cli_delegations, settled, signing_key_of, wait_until
from trust import trust_data
from trust.models import Repository

pytestmark = [pytest.mark.notary, pytest.mark.django_db(transaction=True)]

SYNC_SECONDS = 3
# One interval for the next scheduled sync, and time for it and the Notary sync it causes.
FOLLOW_TIMEOUT = SYNC_SECONDS + 20
RELEASES = "targets/releases"
DIGEST = "a1" * 32


def directory_env(directory: Slapd) -> dict[str, str]:
    """The worker's settings for ``directory``, as an operator would set them."""
    return {
        "GATEHOUSE_LDAP_URL": directory.ldaps_url,
        "GATEHOUSE_LDAP_CA_FILE": str(directory.ca_file),
        "GATEHOUSE_LDAP_BIND_DN": directory.service_dn,
        "GATEHOUSE_LDAP_BIND_PASSWORD": directory.service_password,
        "GATEHOUSE_LDAP_USER_BASE": directory.people_base,
        "GATEHOUSE_LDAP_GROUP_BASE": directory.groups_base,
        "GATEHOUSE_LDAP_DISABLED_FILTER": DISABLED_FILTER,
        "GATEHOUSE_DIRECTORY_SYNC_SECONDS": str(SYNC_SECONDS),
    }


@pytest.fixture
def beat_worker(transactional_db, worker_env, slapd_people, tmp_path) -> Iterator[Path]:  # noqa: F811
    """A Celery worker running beat, pointed at the directory; yields its log, printed at
    the end so a failure shows what the worker did."""
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    require(
        django_settings.CELERY_BROKER_URL.startswith("redis://"),
        "Redis as the broker (CELERY_BROKER_URL=redis://...)",
    )
    from gatehouse.celery import app

    app.control.purge()
    log = tmp_path / "worker.log"
    process = start_worker(log, beat=True, **worker_env, **directory_env(slapd_people))
    yield log
    stop_worker(process)
    print(log.read_text()[-8000:])


@dataclass
class Signers:
    """The repository ``gun``, signed by ci, whose members alice and bob came from LDAP."""

    gun: str
    admin: User
    api: object
    keys: dict[str, PublicKey]
    alice_trust_dir: Path

    def evaluate(self, tag: str) -> dict:
        response = self.api(self.admin).post(
            "/api/v1/policy/evaluate/", {"image": f"{self.gun}:{tag}"}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()


def ci_members() -> set[str]:
    return set(Membership.objects.filter(team__name="ci").values_list("user__username", flat=True))


def active_users() -> set[str]:
    return set(User.objects.filter(is_active=True).values_list("username", flat=True))


def unreachable_runs_since(moment: dt.datetime) -> int:
    return SyncRun.objects.filter(
        trigger=SyncRun.Trigger.SCHEDULE,
        outcome=SyncRun.Outcome.UNREACHABLE,
        started_at__gte=moment,
    ).count()


@pytest.fixture
def signers(
    beat_worker,
    settings,
    slapd_people,
    admin,
    api,
    notary_server,
    notary_cli_in,
    notary_gun,
    tmp_path,
) -> Iterator[Signers]:
    """ci mapped to the LDAP group ci; alice (through the console) and bob log in and get
    signing keys; the worker initialises a repository ci signs; the policy requires ci."""
    ldap_settings_for(settings, slapd_people)
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS = 0
    trust_data.forget()
    ci = team_create(actor=admin, name="ci")
    services.group_mapping_create(actor=admin, source="ldap", group="ci", team=ci)

    login = Client().post("/login/", {"username": "alice", "password": "alice-pass"})
    assert login.status_code == 302, login.content
    assert authenticate(None, username="bob", password="bob-pass") is not None
    assert ci_members() == {"alice", "bob"}
    keys, pems = {}, {}
    for name in ("alice", "bob"):
        keys[name], pems[name] = signing_key_of(User.objects.get(username=name))

    created = api(admin).post(
        "/api/v1/repositories/", {"gun": notary_gun, "signer_teams": ["ci"]}, format="json"
    )
    assert created.status_code == 202, created.content
    wait_until(
        lambda: Repository.objects.filter(gun=notary_gun, state="ready").exists() and settled(),
        what="the worker to initialise the repository",
    )
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )

    alice_trust_dir = tmp_path / "alice"
    alice_trust_dir.mkdir()
    (alice_trust_dir / "key.pem").write_bytes(pems["alice"])
    notary_cli_in(alice_trust_dir, "key", "import", str(alice_trust_dir / "key.pem"))
    yield Signers(notary_gun, admin, api, keys, alice_trust_dir)
    trust_data.forget()


def test_a_user_disabled_in_ldap_leaves_notary_at_the_next_scheduled_sync(
    signers, slapd_people, notary_cli, notary_cli_in
):
    alice, bob = signers.keys["alice"].id, signers.keys["bob"].id
    assert cli_delegations(notary_cli, signers.gun) == {
        RELEASES: {alice, bob},
        "targets/alice": {alice},
        "targets/bob": {bob},
    }

    # alice pushes 1.0 as Docker does: into releases and her own role.
    for role in (RELEASES, "targets/alice"):
        notary_cli_in(
            signers.alice_trust_dir,
            *("addhash", signers.gun, "1.0", "1234", "--sha256", DIGEST, "-r", role, "-p"),
        )
    signed = signers.evaluate("1.0")
    assert signed["decision"] == "allowed", signed
    assert [s["username"] for t in signed["teams"] for s in t["signers"]] == ["alice"]

    disabled_at = timezone.now()
    slapd_people.disable("alice")

    def alice_left_notary() -> bool:
        delegated = cli_delegations(notary_cli, signers.gun)
        return settled() and "targets/alice" not in delegated and bob in delegated[RELEASES]

    wait_until(
        lambda: not User.objects.get(username="alice").is_active,
        what="a scheduled sync to deactivate alice",
        timeout=FOLLOW_TIMEOUT,
    )
    wait_until(alice_left_notary, what="alice's key to leave Notary", timeout=FOLLOW_TIMEOUT)

    delegated = cli_delegations(notary_cli, signers.gun)
    assert alice not in set().union(*delegated.values()), delegated
    assert delegated["targets/bob"] == {bob}
    assert ci_members() == {"bob"}
    assert SyncRun.objects.filter(
        trigger=SyncRun.Trigger.SCHEDULE,
        outcome=SyncRun.Outcome.APPLIED,
        changes__contains=[{"kind": "deactivate", "username": "alice"}],
    ).exists()
    by_directory = set(
        AuditEntry.objects.filter(actor_name="directory", created_at__gte=disabled_at).values_list(
            "action", "target_id"
        )
    )
    assert {("user.deactivated", "alice"), ("membership.removed", "ci")} <= by_directory
    denied = signers.evaluate("1.0")
    assert denied["decision"] == "denied", denied
    assert denied["allowed"] is False


def test_while_the_directory_is_down_the_scheduled_sync_changes_nothing(
    signers, slapd_people, notary_cli, client
):
    delegations = cli_delegations(notary_cli, signers.gun)
    assert set(delegations) == {RELEASES, "targets/alice", "targets/bob"}
    stopped_at = timezone.now()
    slapd_people.stop()

    wait_until(
        lambda: unreachable_runs_since(stopped_at) >= 1,
        what="a scheduled sync to find the directory unreachable",
        timeout=FOLLOW_TIMEOUT,
    )

    run = SyncRun.objects.filter(outcome=SyncRun.Outcome.UNREACHABLE).first()
    assert run.error
    assert run.changes == []
    assert AuditEntry.objects.filter(
        action="directory.sync_unreachable", actor_name="directory"
    ).exists()
    assert settled()
    assert ci_members() == {"alice", "bob"}
    assert {"alice", "bob"} <= active_users()
    assert cli_delegations(notary_cli, signers.gun) == delegations
    assert (
        not AuditEntry.objects.filter(actor_name="directory", created_at__gte=stopped_at)
        .exclude(action="directory.sync_unreachable")
        .exists()
    )

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.content
    assert ready.json()["status"] == "degraded", ready.json()
    assert ready.json()["checks"]["ldap"]["ok"] is False, ready.json()
