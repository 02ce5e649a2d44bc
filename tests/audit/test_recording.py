"""Each kind of change leaves exactly the expected audit entry, driven through the services."""

import json
import socket
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts import services as accounts
from audit.models import AuditEntry
from bundles import services as bundles
from bundles.models import PublicKey
from policy import services as policy
from tests.bundles.helpers import registration
from tests.factories import PASSWORD, make_team, make_user
from tests.trust.helpers import runner_replace
from trust import custody
from trust.models import Job
from trust.notary.errors import NotFound
from trust.services import jobs, repositories, root_key
from trust.services.jobs import RunResult
from trust.token_service import tokens
from trust.trust_data import forget

pytestmark = pytest.mark.django_db

POD = Path(__file__).resolve().parents[1] / "policy" / "fixtures" / "pod.json"


def only(action: str, **lookups: str) -> AuditEntry:
    """The one entry of ``action`` (and ``lookups``); fails when there are none or several."""
    entries = list(AuditEntry.objects.filter(action=action, **lookups))
    assert len(entries) == 1, [(e.action, e.target_id, e.after) for e in entries]
    return entries[0]


def shape(entry: AuditEntry) -> tuple:
    return (
        entry.actor_name,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.before,
        entry.after,
    )


# --- Users, teams, memberships ----------------------------------------------------------


def test_user_lifecycle(admin):
    user = accounts.user_create(
        actor=admin, username="bob", password=PASSWORD, full_name="Bob", email="b@example.com"
    )
    entry = only("user.created", target_id="bob")
    assert shape(entry) == (
        "root",
        "user.created",
        "user",
        "bob",
        None,
        {"full_name": "Bob", "email": "b@example.com", "is_admin": False, "is_active": True},
    )
    assert entry.actor == admin
    assert entry.address is None  # no request: a service called directly

    accounts.user_update(actor=admin, user=user, full_name="Robert", email="b@example.com")
    assert shape(only("user.updated"))[3:] == ("bob", {"full_name": "Bob"}, {"full_name": "Robert"})
    accounts.user_update(actor=admin, user=user, full_name="Robert")  # no change: no entry
    assert AuditEntry.objects.filter(action="user.updated").count() == 1

    accounts.user_deactivate(actor=admin, user=user)
    assert shape(only("user.deactivated")) == (
        "root",
        "user.deactivated",
        "user",
        "bob",
        {"is_active": True},
        {"is_active": False},
    )
    accounts.user_reactivate(actor=admin, user=user)
    assert shape(only("user.reactivated"))[3:] == ("bob", {"is_active": False}, {"is_active": True})

    accounts.user_password_change(actor=admin, user=user, new_password="another-Long-passw0rd")
    entry = only("user.password_changed")
    assert (entry.actor_name, entry.target_id, entry.before) == ("root", "bob", None)
    assert "passw0rd" not in json.dumps([entry.before, entry.after])


def test_system_created_user_has_no_actor(db):
    make_user("carol")
    entry = only("user.created", target_id="carol")
    assert (entry.actor, entry.actor_name, entry.target_id) == (None, "", "carol")


def test_teams_and_memberships(admin, alice):
    team = accounts.team_create(actor=admin, name="ci", description="Builds")
    assert shape(only("team.created")) == (
        "root",
        "team.created",
        "team",
        "ci",
        None,
        {"description": "Builds"},
    )
    accounts.team_update(actor=admin, team=team, description="CI")
    assert shape(only("team.updated"))[3:] == (
        "ci",
        {"description": "Builds"},
        {"description": "CI"},
    )

    accounts.team_member_add(actor=admin, team=team, user=alice)
    accounts.team_member_add(actor=admin, team=team, user=alice)  # already a member
    assert shape(only("membership.added")) == (
        "root",
        "membership.added",
        "team",
        "ci",
        None,
        {"member": "alice"},
    )
    accounts.team_member_remove(actor=admin, team=team, user=alice)
    accounts.team_member_remove(actor=admin, team=team, user=alice)  # not a member any more
    assert shape(only("membership.removed"))[3:] == ("ci", {"member": "alice"}, None)

    accounts.team_member_add(actor=admin, team=team, user=alice)
    accounts.team_delete(actor=admin, team=team)
    assert shape(only("team.deleted"))[3:] == (
        "ci",
        {"description": "CI", "members": ["alice"]},
        None,
    )


def test_a_failed_change_records_nothing(admin):
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal will do
        accounts.user_create(actor=admin, username="x", password="short")
    assert not AuditEntry.objects.filter(action="user.created", target_id="x").exists()


# --- Keys and bundles --------------------------------------------------------------------


def test_keys(admin, alice):
    issued = bundles.bundle_issue(user=alice, label="laptop", signing=True)
    entry = only("bundle.issued")
    key_id = issued.key.id
    assert (entry.actor_name, entry.target_type, entry.target_id) == ("alice", "key", key_id)
    assert entry.after["owner"] == "alice"
    assert entry.after["label"] == "laptop"
    assert entry.after["is_signing_key"] is True

    bundles.public_key_update(actor=admin, key=issued.key, label="old laptop")
    assert shape(only("key.updated"))[3:] == (key_id, {"label": "laptop"}, {"label": "old laptop"})
    bundles.public_key_update(actor=alice, key=issued.key, is_signing_key=False)
    made_not_signing = AuditEntry.objects.filter(action="key.updated").first()
    assert (made_not_signing.actor_name, made_not_signing.before, made_not_signing.after) == (
        "alice",
        {"is_signing_key": True},
        {"is_signing_key": False},
    )

    bundles.public_key_revoke(actor=admin, key=issued.key)
    entry = only("key.revoked")
    assert (entry.actor_name, entry.target_id) == ("root", key_id)
    assert entry.after["revoked_at"] is not None

    key = bundles.public_key_register(
        actor=admin, user=alice, **registration(admin), label="yubikey", signing=False
    )
    entry = only("key.registered")
    assert (entry.actor_name, entry.target_id, entry.after["owner"]) == ("root", key.id, "alice")
    assert entry.after["source"] == PublicKey.Source.REGISTERED


# --- Content trust -----------------------------------------------------------------------


def test_policy_update_keeps_changed_fields_only(admin):
    make_team("ci", actor=admin)
    policy.policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    entry = only("policy.updated")
    assert (entry.actor_name, entry.target_type, entry.target_id) == (
        "root",
        "policy",
        "content-trust",
    )
    # Only what changed: the exemption rules stay out.
    assert entry.before == {
        "enabled": False,
        "default": {"mode": "enforced", "require": "no signers"},
    }
    assert entry.after == {
        "enabled": True,
        "default": {"mode": "enforced", "require": "1 of ci"},
        "version": 1,
    }
    policy.policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    assert AuditEntry.objects.filter(action="policy.updated").count() == 1


def test_repositories_and_jobs(admin, monkeypatch):
    make_team("ci", actor=admin)
    make_team("qa", actor=admin)
    repository, job = repositories.repository_create(
        actor=admin, gun="registry.example.com/shop/web", signer_team_names=["ci"]
    )
    assert shape(only("repository.created")) == (
        "root",
        "repository.created",
        "repository",
        "registry.example.com/shop/web",
        None,
        {"signer_teams": ["ci"], "job": job.pk},
    )
    repositories.repositories_create_bulk(
        actor=admin, guns=["registry.example.com/a", "registry.example.com/shop/web"]
    )
    assert AuditEntry.objects.filter(action="repository.created").count() == 2  # one skipped

    repositories.repository_update_signer_teams(
        actor=admin, repository=repository, signer_team_names=["qa", "ci"]
    )
    assert shape(only("repository.signer_teams_changed"))[3:] == (
        "registry.example.com/shop/web",
        {"signer_teams": ["ci"]},
        {"signer_teams": ["ci", "qa"]},
    )

    runner_replace(monkeypatch, Job.Kind.INITIALIZE, lambda job: RunResult({"ok": True}))
    jobs.job_run(job_id=job.pk)
    started, finished = only("job.started"), only("job.finished")
    assert (started.actor, started.target_type, started.target_id) == (None, "job", str(job.pk))
    assert started.after == {"kind": "initialize", "gun": repository.gun, "attempt": 1}
    assert finished.after == {
        "kind": "initialize",
        "gun": repository.gun,
        "status": "succeeded",
        "error": "",
    }

    delete_job = repositories.repository_delete(actor=admin, repository=repository)
    assert shape(only("repository.delete_requested"))[3:] == (
        repository.gun,
        None,
        {"job": delete_job.pk},
    )


def test_root_key_export(admin):
    custody.root_key()
    root_key.root_key_export(actor=admin, passphrase="a long passphrase")
    entry = only("root_key.exported")
    assert (entry.actor_name, entry.target_type) == ("root", "root_key")
    assert entry.target_id == root_key.root_key_ensure()[0]
    assert "passphrase" not in json.dumps([entry.before, entry.after])


def test_notary_tokens_with_push_or_star_are_recorded(admin, alice):
    team = make_team("ci", members=(alice,), actor=admin)
    repositories.repository_create(
        actor=admin, gun="registry.example.com/shop/web", signer_team_names=[team.name]
    )
    service = django_settings.GATEHOUSE_NOTARY_SERVICE
    pull = tokens.TokenRequest.parse(
        service=service, scopes=["repository:registry.example.com/shop/web:pull"]
    )
    tokens.token_issue(identity=alice, request=pull)
    assert not AuditEntry.objects.filter(action="notary_token.issued").exists()

    push = tokens.TokenRequest.parse(
        service=service, scopes=["repository:registry.example.com/shop/web:push,pull"]
    )
    issued = tokens.token_issue(identity=alice, request=push)
    entry = only("notary_token.issued")
    assert (entry.actor_name, entry.target_type, entry.target_id) == (
        "alice",
        "notary_token",
        "registry.example.com/shop/web",
    )
    assert entry.after["granted"] == ["repository:registry.example.com/shop/web:push,pull"]
    assert issued.token not in json.dumps(entry.after)

    tokens.service_token(service=service, scope="repository:registry.example.com/shop/web:*")
    assert AuditEntry.objects.filter(action="notary_token.issued").count() == 1


# --- Logins ------------------------------------------------------------------------------


def test_api_logins_and_failed_logins():
    dave = make_user("dave")
    client = APIClient()
    ok = client.post(
        "/api/v1/auth/login/", {"username": "dave", "password": PASSWORD}, format="json"
    )
    assert ok.status_code == 200
    bad = client.post(
        "/api/v1/auth/login/", {"username": "dave", "password": "wrong"}, format="json"
    )
    assert bad.status_code == 401
    entry = only("login.succeeded")
    assert (entry.actor_name, entry.target_id, entry.after, entry.address) == (
        "dave",
        "dave",
        {"via": "api"},
        "127.0.0.1",
    )
    entry = only("login.failed")
    assert (entry.actor, entry.actor_name, entry.target_id, entry.after) == (
        dave,
        "dave",
        "dave",
        {"via": "api"},
    )
    assert ok.json()["token"] not in json.dumps([e.after for e in AuditEntry.objects.all()])


def test_console_logins_and_failed_logins(client):
    erin = make_user("erin")
    client.post("/login/", {"username": "erin", "password": "wrong"})
    client.post("/login/", {"username": "erin", "password": PASSWORD}, REMOTE_ADDR="10.1.2.3")
    entry = only("login.failed")
    assert (entry.actor, entry.actor_name, entry.target_id, entry.after) == (
        erin,
        "erin",
        "erin",
        {"via": "console"},
    )
    entry = only("login.succeeded")
    assert (entry.actor_name, entry.target_id, entry.after, entry.address) == (
        "erin",
        "erin",
        {"via": "console"},
        "10.1.2.3",
    )


def test_a_failed_login_is_attributed_to_the_account_tried_in_any_case(client, api, admin):
    frank = make_user("frank")
    client.post("/login/", {"username": "FRANK", "password": "wrong"})
    api().post("/api/v1/auth/login/", {"username": "Frank", "password": "wrong"}, format="json")
    entries = AuditEntry.objects.filter(action="login.failed").order_by("id")
    assert [(e.actor, e.actor_name, e.target_id, e.after["via"]) for e in entries] == [
        (frank, "frank", "frank", "console"),
        (frank, "frank", "frank", "api"),
    ]
    listed = api(admin).get("/api/v1/audit/", {"action": "login.failed"}).json()["results"]
    assert [entry["actor_name"] for entry in listed] == ["frank", "frank"]
    assert api(admin).get("/api/v1/audit/", {"actor": "FRANK"}).json()["count"] == 2


def test_a_failed_login_of_no_account_names_what_was_typed(client, api, admin):
    typed = ("<b>Gatehouse</b>\u202eevil" + "x" * 200)[:150]
    client.post("/login/", {"username": typed, "password": "wrong"})
    api().post("/api/v1/auth/login/", {"username": "ghost", "password": "wrong"}, format="json")
    console, via_api = AuditEntry.objects.filter(action="login.failed").order_by("id")
    assert (console.actor, console.actor_name, console.target_id) == (None, typed, typed)
    assert (via_api.actor, via_api.actor_name, via_api.target_id) == (None, "ghost", "ghost")
    listed = api(admin).get("/api/v1/audit/", {"action": "login.failed"}).json()["results"]
    assert [entry["actor_name"] for entry in listed] == ["ghost", typed]

    client.force_login(admin)
    page = client.get("/audit/", {"action": "login.failed"}).content.decode()
    assert '<bdi class="mono">ghost</bdi> <span class="muted-text">(no such account)</span>' in page
    assert "<b>Gatehouse</b>" not in page
    assert '<bdi class="mono">&lt;b&gt;Gatehouse&lt;/b&gt;\u202eevil' in page


def test_the_address_of_an_api_change_is_recorded(api, admin):
    client = api(admin)
    response = client.post(
        "/api/v1/teams/", {"name": "ops"}, format="json", REMOTE_ADDR="192.0.2.7"
    )
    assert response.status_code == 201
    entry = only("team.created")
    assert (entry.actor_name, entry.address) == ("root", "192.0.2.7")


# --- Denied evaluations and admission reviews --------------------------------------------


@pytest.fixture
def enforced(admin):
    make_team("ci", actor=admin)
    policy.policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )


def test_denied_evaluations_are_recorded_allowed_ones_not(api, alice, enforced, monkeypatch):
    def no_trust_data(gun):
        raise NotFound("no trust data", gun=gun)

    monkeypatch.setattr(policy, "verified_repository", no_trust_data)
    response = api(alice).post(
        "/api/v1/policy/evaluate/", {"image": "registry.example.com/shop/web:1.0"}, format="json"
    )
    assert response.json()["decision"] == "denied"
    entry = only("policy.evaluation_denied")
    assert (entry.actor_name, entry.target_type, entry.target_id) == (
        "alice",
        "repository",
        "registry.example.com/shop/web",
    )
    assert entry.after["image"] == "registry.example.com/shop/web:1.0"
    assert entry.after["reasons"]

    policy.image_evaluate(image="registry.example.com/shop/web:2.0")  # no request
    second = AuditEntry.objects.filter(action="policy.evaluation_denied").first()
    assert (second.actor, second.after["image"]) == (None, "registry.example.com/shop/web:2.0")


def test_denied_admission_reviews_are_recorded(enforced, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.NOTARY_URL = f"http://127.0.0.1:{port}"
    forget()
    try:
        _, raw_token, _, _ = policy.admission_service_account(username="kube-apiserver")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
        response = client.generic(
            "POST", "/api/v1/admission/validate/", POD.read_text(), content_type="application/json"
        )
        assert response.json()["response"]["allowed"] is False
    finally:
        forget()
    entry = only("admission.denied")
    document = json.loads(POD.read_text())["request"]
    assert entry.actor_name == "kube-apiserver"
    assert entry.target_type == "workload"
    assert entry.target_id == f"{document['namespace']}/Pod/{document['name']}"
    assert entry.after["webhook"] == "validate"
    assert entry.after["failing"]
    assert raw_token not in json.dumps(entry.after)
