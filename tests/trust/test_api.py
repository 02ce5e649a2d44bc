"""The repositories, jobs and trust-root API: who may do what, and bad input."""

import datetime as dt

import pytest
from celery import current_app
from cryptography.hazmat.primitives import serialization
from kombu.exceptions import OperationalError

from audit.models import AuditEntry
from tests.factories import make_team, make_user
from trust import custody
from trust.models import CustodyKey, Job, Repository, RootKeyExport
from trust.notary.keys import public_tuf_key
from trust.services.jobs import jobs_requeue_stale
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"


@pytest.fixture
def world(admin, alice):
    """alice is in ci, which signs GUN; bob is in no team. The root key exists, as
    ``manage.py root_key`` or the first repository's initialisation makes it."""
    custody.root_key()
    make_team("ci", members=(alice,), actor=admin)
    make_team("ops", actor=admin)
    repository, _ = repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    other, _ = repository_create(actor=admin, gun="registry.example.com/ops/db")
    return {
        "admin": admin,
        "alice": alice,
        "bob": make_user("bob"),
        "repo": repository,
        "other": other,
    }


MATRIX = [
    (
        "get",
        "/api/v1/repositories/",
        None,
        {"anonymous": 401, "alice": 200, "bob": 200, "admin": 200},
    ),
    (
        "get",
        "/api/v1/repositories/{repo}/",
        None,
        {"anonymous": 401, "alice": 200, "bob": 404, "admin": 200},
    ),
    (
        "get",
        "/api/v1/repositories/{other}/",
        None,
        {"anonymous": 401, "alice": 404, "bob": 404, "admin": 200},
    ),
    (
        "post",
        "/api/v1/repositories/",
        {"gun": "registry.example.com/new/one"},
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 202},
    ),
    (
        "post",
        "/api/v1/repositories/bulk/",
        {"guns": ["registry.example.com/b/1"]},
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 202},
    ),
    (
        "patch",
        "/api/v1/repositories/{repo}/",
        {"signer_teams": ["ops"]},
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 202},
    ),
    (
        "post",
        "/api/v1/repositories/{repo}/sync/",
        None,
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 202},
    ),
    (
        "delete",
        "/api/v1/repositories/{repo}/",
        None,
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 202},
    ),
    (
        "post",
        "/api/v1/repositories/adopt/",
        {"gun": "x", "targets_key": "y"},
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 400},
    ),
    ("get", "/api/v1/jobs/", None, {"anonymous": 401, "alice": 200, "bob": 200, "admin": 200}),
    (
        "get",
        "/api/v1/trust/root/",
        None,
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 200},
    ),
    (
        "post",
        "/api/v1/trust/root/export/",
        {"passphrase": "correct horse battery"},
        {"anonymous": 401, "alice": 403, "bob": 403, "admin": 200},
    ),
]


@pytest.mark.parametrize("caller", ["anonymous", "alice", "bob", "admin"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
def test_permission_matrix(api, world, caller, method, path, body, expected):
    client = api(None if caller == "anonymous" else world[caller])
    url = path.format(repo=world["repo"].pk, other=world["other"].pk)
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == expected[caller], response.content


def test_lists_are_scoped_and_filterable(api, world):
    listed = api(world["alice"]).get("/api/v1/repositories/").json()
    assert [r["gun"] for r in listed["results"]] == [GUN]
    assert api(world["bob"]).get("/api/v1/repositories/").json()["count"] == 0
    admin = api(world["admin"])
    assert admin.get("/api/v1/repositories/", {"team": "ci"}).json()["count"] == 1
    assert admin.get("/api/v1/repositories/", {"search": "ops/"}).json()["count"] == 1
    assert admin.get("/api/v1/repositories/", {"state": "pending"}).json()["count"] == 2
    jobs = api(world["alice"]).get("/api/v1/jobs/").json()["results"]
    assert {job["gun"] for job in jobs} == {GUN}
    assert admin.get("/api/v1/jobs/", {"status": "queued"}).json()["count"] == 2
    repo_jobs = admin.get("/api/v1/jobs/", {"repository": world["repo"].pk}).json()
    assert [job["kind"] for job in repo_jobs["results"]] == ["initialize"]


def test_a_job_answers_with_its_history_and_jobs_are_read_by_ids(api, world):
    job = Job.objects.get(repository=world["repo"])
    other = Job.objects.get(repository=world["other"])

    body = api(world["alice"]).get(f"/api/v1/jobs/{job.pk}/").json()
    assert [(event["status"], event["attempt"]) for event in body["events"]] == [("queued", 0)]
    assert body["caused_by"] == "root"
    assert api(world["alice"]).get(f"/api/v1/jobs/{other.pk}/").status_code == 404

    admin = api(world["admin"])
    both = admin.get("/api/v1/jobs/", {"id": f"{job.pk},{other.pk}"}).json()
    assert sorted(found["id"] for found in both["results"]) == sorted([job.pk, other.pk])
    assert "events" not in both["results"][0]
    seen = api(world["alice"]).get("/api/v1/jobs/", {"id": f"{job.pk},{other.pk}"}).json()
    assert [found["id"] for found in seen["results"]] == [job.pk]
    refused = admin.get("/api/v1/jobs/", {"id": "1,x"})
    assert refused.status_code == 400
    assert "id" in refused.json()


def test_create_answers_202_with_the_job(api, world):
    response = api(world["admin"]).post(
        "/api/v1/repositories/",
        {"gun": "registry.example.com/ci/web", "signer_teams": ["ci"]},
        format="json",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "pending"
    assert body["signer_teams"] == ["ci"]
    job = Job.objects.get(pk=body["job"]["id"])
    assert job.kind == "initialize"
    assert body["job"]["url"].endswith(f"/api/v1/jobs/{job.pk}/")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gun": ""}, "gun"),
        ({"gun": "Registry.example.com/App"}, "gun"),
        ({"gun": "registry.example.com//app"}, "gun"),
        ({"gun": "/registry.example.com/app"}, "gun"),
        ({"gun": "registry.example.com/app/"}, "gun"),
        ({"gun": "registry example/app"}, "gun"),
        ({"gun": "a" * 256}, "gun"),
        ({"gun": GUN}, "gun"),
        ({"gun": "registry.example.com/x", "signer_teams": ["nope"]}, "signer_teams"),
        ({"gun": "registry.example.com/x", "signer_teams": "ci"}, "signer_teams"),
        ({"gun": ["x"]}, "gun"),
    ],
)
def test_bad_repository_input_is_a_400_and_creates_nothing(api, world, body, field):
    before = set(Repository.objects.values_list("gun", flat=True)), Job.objects.count()
    response = api(world["admin"]).post("/api/v1/repositories/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert (set(Repository.objects.values_list("gun", flat=True)), Job.objects.count()) == before


def test_bulk_creates_all_or_nothing_and_skips_existing(api, world):
    client = api(world["admin"])
    bad = client.post(
        "/api/v1/repositories/bulk/",
        {"guns": ["registry.example.com/ok", "Bad//Gun"]},
        format="json",
    )
    assert bad.status_code == 400
    assert "Bad//Gun" in str(bad.json()["guns"])
    assert not Repository.objects.filter(gun="registry.example.com/ok").exists()

    guns = [f"registry.example.com/bulk/{n}" for n in range(3)] + [GUN]
    response = client.post(
        "/api/v1/repositories/bulk/", {"guns": guns, "signer_teams": ["ci"]}, format="json"
    )
    assert response.status_code == 202
    body = response.json()
    assert body["summary"] == {"requested": 4, "created": 3, "skipped": [GUN]}
    assert len(body["jobs"]) == 3
    assert all(r["signer_teams"] == ["ci"] for r in body["repositories"])


def test_signer_teams_update_and_sync_queue_one_sync(api, world):
    client = api(world["admin"])
    repo = world["repo"]
    first = client.patch(
        f"/api/v1/repositories/{repo.pk}/", {"signer_teams": ["ci", "ops"]}, format="json"
    )
    assert first.status_code == 202
    assert sorted(first.json()["signer_teams"]) == ["ci", "ops"]
    second = client.post(f"/api/v1/repositories/{repo.pk}/sync/")
    assert second.json()["job"]["id"] == first.json()["job"]["id"]
    assert Job.objects.filter(repository=repo, kind="sync", status="queued").count() == 1
    bad = client.patch(
        f"/api/v1/repositories/{repo.pk}/", {"signer_teams": ["ghost"]}, format="json"
    )
    assert bad.status_code == 400
    assert sorted(repo.signer_teams.values_list("name", flat=True)) == ["ci", "ops"]


def test_trust_root_gives_the_pinning_snippet(api, world):
    body = api(world["admin"]).get("/api/v1/trust/root/").json()
    root = CustodyKey.objects.get(kind="root")
    assert body["root_key_id"] == root.key_id
    assert body["message"] is None
    assert body["exported"] is False
    assert body["daemon_json"]["content-trust"]["mode"] == "enforced"
    pins = body["daemon_json"]["content-trust"]["trust-pinning"]["root-keys"]
    # Each GUN Gatehouse made, not the registry: a prefix would refuse the other
    # repositories there, which Gatehouse does not pin (tests/trust/test_pins.py).
    assert pins == {
        "registry.example.com/ci/app": [root.key_id],
        "registry.example.com/ops/db": [root.key_id],
    }


def test_reading_the_trust_root_never_makes_the_root_key(api, admin):
    keys = CustodyKey.objects.count()

    response = api(admin).get("/api/v1/trust/root/")

    assert response.status_code == 200
    body = response.json()
    assert body["root_key_id"] is None
    assert body["message"] == custody.ROOT_KEY_MISSING
    assert "manage.py root_key" in body["message"]
    assert body["exported"] is False
    assert body["daemon_json"]["content-trust"]["trust-pinning"]["root-keys"] == {}
    assert CustodyKey.objects.count() == keys
    assert not CustodyKey.objects.filter(kind="root").exists()


def test_exporting_before_the_root_key_exists_is_a_409_that_says_why(api, admin):
    keys = CustodyKey.objects.count()

    response = api(admin).post(
        "/api/v1/trust/root/export/", {"passphrase": "correct horse battery"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {"detail": custody.ROOT_KEY_MISSING}
    assert CustodyKey.objects.count() == keys
    assert not RootKeyExport.objects.exists()
    assert not AuditEntry.objects.filter(action="root_key.exported").exists()


def test_root_export_is_encrypted_recorded_and_refuses_short_passphrases(api, world):
    client = api(world["admin"])
    short = client.post("/api/v1/trust/root/export/", {"passphrase": "too short"}, format="json")
    assert short.status_code == 400
    assert "passphrase" in short.json()
    assert not RootKeyExport.objects.exists()

    response = client.post(
        "/api/v1/trust/root/export/", {"passphrase": "correct horse battery"}, format="json"
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.content.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = serialization.load_pem_private_key(response.content, b"correct horse battery")
    root = CustodyKey.objects.get(kind="root")
    assert public_tuf_key(key.public_key()).key_id == root.key_id
    assert RootKeyExport.objects.get().actor == world["admin"]
    assert client.get("/api/v1/trust/root/").json()["exported"] is True
    assert "correct horse battery" not in str(response.headers)


def test_private_keys_never_appear_in_responses(api, world):
    client = api(world["admin"])
    bodies = [
        client.get("/api/v1/repositories/").content,
        client.get(f"/api/v1/repositories/{world['repo'].pk}/").content,
        client.get("/api/v1/jobs/").content,
        client.get("/api/v1/trust/root/").content,
    ]
    sealed = [bytes(k.sealed_private_key) for k in CustodyKey.objects.all()]
    for body in bodies:
        assert b"PRIVATE KEY" not in body
        assert not any(blob[-32:].hex().encode() in body for blob in sealed)


def test_an_over_long_export_passphrase_is_a_400(api, world):
    response = api(world["admin"]).post(
        "/api/v1/trust/root/export/", {"passphrase": "é" * 600}, format="json"
    )
    assert response.status_code == 400
    assert "passphrase" in response.json()
    assert not RootKeyExport.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_broker_loses_no_job(api, admin, monkeypatch, caplog):

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    response = api(admin).post(
        "/api/v1/repositories/", {"gun": "registry.example.com/ci/app"}, format="json"
    )
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.status == "queued"
    assert "stale-job sweep" in caplog.text

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, **kw: sent.append(args))

    assert jobs_requeue_stale(older_than=dt.timedelta(0)) == 1
    assert sent == [[job.pk]]


def test_the_repository_list_costs_the_same_queries_for_any_page_size(api, admin, alice):
    """Owners of delegated keys and each repository's newest job come in a fixed number of
    queries, not a few per repository."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.trust.helpers import signing_key_of

    key, _ = signing_key_of(alice)
    make_team("ci", members=(alice,), actor=admin)
    client = api(admin)

    def add_repositories(count: int, start: int) -> None:
        for number in range(start, start + count):
            repository, _ = repository_create(
                actor=admin, gun=f"registry.example.com/ci/app{number}", signer_team_names=["ci"]
            )
            Repository.objects.filter(pk=repository.pk).update(
                delegations=[{"role": "targets/alice", "key_ids": [key.tuf_key_id]}]
            )
            Job.objects.create(kind="sync", repository=repository, gun=repository.gun)

    def listed() -> tuple[int, list[dict]]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/repositories/")
        assert response.status_code == 200
        return len(queries), response.json()["results"]

    add_repositories(1, 0)
    few, _ = listed()
    add_repositories(9, 1)
    many, results = listed()
    assert many == few
    assert len(results) == 10
    for result in results:
        (keys,) = [d["keys"] for d in result["delegations"] if d["role"] == "targets/alice"]
        assert keys == [{"id": key.id, "username": "alice", "label": key.label}]
        newest = Job.objects.filter(gun=result["gun"]).order_by("-created_at", "-id").first()
        assert result["latest_job"]["id"] == newest.pk
        assert result["latest_job"]["kind"] == "sync"


def test_a_job_id_that_is_not_whole_is_refused_not_rounded(api, admin):
    """``?id=3.5`` answered job 3: bad input must be a 400 naming the field."""
    _, job = repository_create(actor=admin, gun=GUN, signer_team_names=[])

    refused = api(admin).get("/api/v1/jobs/", {"id": f"{job.pk}.5"})

    assert refused.status_code == 400
    assert "id" in refused.json()
    assert api(admin).get("/api/v1/jobs/", {"id": str(job.pk)}).json()["count"] == 1
