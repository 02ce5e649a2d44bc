"""The log is append-only, holds no secrets, and only admins read it (page and API)."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from accounts import services as accounts
from audit.models import AppendOnly, AuditEntry
from audit.services import audit_record
from bundles import services as bundles
from tests.factories import PASSWORD, make_team, make_user
from trust import custody
from trust.services import root_key

pytestmark = pytest.mark.django_db

API = "/api/v1/audit/"


def test_entries_cannot_be_changed_or_deleted(admin):
    entry = AuditEntry.objects.first()
    entry.action = "forged"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "user.created"


def test_the_api_cannot_change_or_delete_entries(api, admin):
    client = api(admin)
    entry = AuditEntry.objects.first()
    assert client.post(API, {"action": "forged"}, format="json").status_code == 405
    detail = f"{API}{entry.pk}/"
    assert client.get(detail).json()["action"] == "user.created"
    assert client.put(detail, {"action": "forged"}, format="json").status_code == 405
    assert client.patch(detail, {"action": "forged"}, format="json").status_code == 405
    assert client.delete(detail).status_code == 405
    assert AuditEntry.objects.get(pk=entry.pk).action == "user.created"


def test_a_bad_payload_never_breaks_the_change(admin):
    loop: dict = {}
    loop["self"] = loop
    entry = audit_record(
        action="x" * 100,
        actor=admin,
        target_type="thing",
        target_id="t" * 300,
        after={"when": timezone.now(), "obj": object(), "password": "hunter2", "nested": loop},
    )
    assert entry is not None
    assert len(entry.action) == 64
    assert len(entry.target_id) == 255
    assert audit_record(action="a", actor=None, target_type="t", target_id=1, after=loop)


def test_secrets_never_appear_in_any_entry(api, admin, alice, client):
    new_password = "A-brand-new-passw0rd!"
    bob = accounts.user_create(actor=admin, username="bob", password=PASSWORD)
    accounts.user_password_change(actor=admin, user=bob, new_password=new_password)
    login = api().post(
        "/api/v1/auth/login/", {"username": "bob", "password": new_password}, format="json"
    )
    raw_token = login.json()["token"]
    api().post(
        "/api/v1/auth/login/",
        {"username": "bob", "password": "wrong-" + new_password},
        format="json",
    )
    client.post("/login/", {"username": "alice", "password": "typo-" + PASSWORD})
    issued = bundles.bundle_issue(user=alice, label="laptop", signing=True)
    passphrase = "a long root passphrase"
    custody.root_key()
    root_key.root_key_export(actor=admin, passphrase=passphrase)

    everything = (
        json.dumps(list(AuditEntry.objects.values()), default=str)
        + api(admin).get(API + "?limit=500").content.decode()
    )
    for secret in (PASSWORD, new_password, raw_token, passphrase, "PRIVATE KEY", "BEGIN"):
        assert secret not in everything
    assert bob.password not in everything  # not even the hash
    assert issued.archive[:64].decode("latin-1") not in everything
    assert AuditEntry.objects.filter(action="login.failed").count() == 2


def test_api_permissions(api, admin, alice):
    assert api().get(API).status_code == 401
    assert api(alice).get(API).status_code == 403
    response = api(admin).get(API)
    assert response.status_code == 200
    assert response.json()["count"] == AuditEntry.objects.count()
    assert {
        "id",
        "created_at",
        "actor_name",
        "address",
        "action",
        "target_type",
        "target_id",
        "before",
        "after",
    } <= set(response.json()["results"][0])


@pytest.fixture
def history(admin, alice):
    """Entries by two actors on two days, newest first."""
    team = make_team("ci", actor=admin)
    accounts.team_member_add(actor=admin, team=team, user=alice)
    bundles.bundle_issue(user=alice, label="laptop")
    AuditEntry.objects.create(  # an entry from ten days ago
        created_at=timezone.now() - dt.timedelta(days=10),
        actor=admin,
        actor_name="root",
        action="team.created",
        target_type="team",
        target_id="ancient",
    )


def results(response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.content
    return [(e["action"], e["target_id"]) for e in response.json()["results"]]


def test_api_filters_and_paging(api, admin, history):
    client = api(admin)
    assert results(client.get(API, {"actor": "alice"})) == [
        ("bundle.issued", AuditEntry.objects.get(action="bundle.issued").target_id)
    ]
    assert results(client.get(API, {"action": "membership."})) == [("membership.added", "ci")]
    assert results(client.get(API, {"target_type": "team", "target_id": "ci"})) == [
        ("membership.added", "ci"),
        ("team.created", "ci"),
    ]
    last_week = (timezone.now() - dt.timedelta(days=7)).isoformat()
    assert ("team.created", "ancient") not in results(client.get(API, {"since": last_week}))
    assert results(client.get(API, {"until": last_week})) == [("team.created", "ancient")]
    assert client.get(API, {"since": "not a date"}).status_code == 400

    everything = results(client.get(API))
    assert everything[-1] == ("team.created", "ancient")  # newest first
    page = client.get(API, {"limit": 2, "offset": 1}).json()
    assert [(e["action"], e["target_id"]) for e in page["results"]] == everything[1:3]
    assert page["count"] == len(everything)


def test_page_permissions(client, admin, alice):
    response = client.get("/audit/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    client.force_login(alice)
    assert client.get("/audit/").status_code == 403
    client.force_login(admin)
    response = client.get("/audit/")
    assert response.status_code == 200
    assert response.templates[0].name == "audit/list.html"


def test_page_filters_and_paging(client, admin, history, settings):
    client.force_login(admin)

    def shown(**query) -> list[tuple[str, str]]:
        response = client.get("/audit/", query)
        assert response.status_code == 200
        return [(e.action, e.target_id) for e in response.context["page"].object_list]

    assert [action for action, _ in shown(actor="alice")] == ["bundle.issued"]
    assert shown(action="membership.") == [("membership.added", "ci")]
    assert shown(target_type="team", target_id="ancient") == [("team.created", "ancient")]
    today = timezone.now().date()
    recent = shown(**{"from": str(today)})
    assert ("team.created", "ancient") not in recent
    assert ("membership.added", "ci") in recent
    assert shown(to=str(today - dt.timedelta(days=5))) == [("team.created", "ancient")]
    page = client.get("/audit/", {"action": "membership."})
    assert "membership.added" in page.text
    assert "No entry matches these filters." in client.get("/audit/", {"actor": "nobody"}).text

    for number in range(60):
        make_user(f"user{number:02d}")
    first = client.get("/audit/")
    assert first.context["page"].paginator.num_pages == 2
    assert first.context["page"].object_list[0].target_id == "user59"  # newest first
    second = client.get("/audit/", {"page": 2})
    assert list(second.context["page"].object_list)[-1].target_id == "ancient"


def test_the_actor_name_outlives_a_deleted_user(admin):
    helper = make_user("helper", is_admin=True)
    make_team("ops", actor=helper)
    helper.delete()  # users are deactivated, never deleted; but the log would survive it
    entry = AuditEntry.objects.get(action="team.created", target_id="ops")
    assert (entry.actor, entry.actor_name) == (None, "helper")
