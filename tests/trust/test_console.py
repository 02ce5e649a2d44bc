"""The content-trust console: repositories, jobs and the trust root, as a browser user meets
them. No Notary is needed: every write only queues a job, which nothing runs here."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.factories import make_team, make_user
from trust import custody
from trust.models import CustodyKey, Job, Repository, RootKeyExport
from trust.services.repositories import repositories_create_bulk, repository_create
from trust.services.root_key import root_key_ensure
from trust.services.sync_requests import repository_sync_request

GUN_FINISHING = "registry.example.com/ci/finishing"

pytestmark = pytest.mark.django_db

GUN = "registry.example.com/ci/app"
PASSPHRASE = "a-long-export-passphrase"
BANNER = "Back up the root key."


@pytest.fixture
def teams(admin, alice):
    """alice is in ci; bob is in ops; ci signs app, ops signs db."""
    ci = make_team("ci", members=(alice,), actor=admin)
    ops = make_team("ops", members=(make_user("bob"),), actor=admin)
    return ci, ops


@pytest.fixture
def repositories(admin, teams):
    app, _ = repository_create(actor=admin, gun=GUN, signer_team_names=["ci"])
    db, _ = repository_create(
        actor=admin, gun="registry.example.com/ops/db", signer_team_names=["ops"]
    )
    return app, db


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def as_alice(client, alice, teams):
    client.force_login(alice)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def form_errors(response, form: str) -> dict[str, list[str]]:
    return {field: list(errors) for field, errors in response.context[form].errors.items()}


# --- Access --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/repositories/", "/repositories/1/", "/jobs/", "/trust/root/"])
def test_anonymous_visitor_is_sent_to_log_in(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_non_admin_gets_403_on_trust_root_jobs_and_every_write(as_alice, repositories):
    app, _ = repositories
    before = (Repository.objects.count(), Job.objects.count())
    responses = {
        "root": as_alice.get("/trust/root/"),
        "export": as_alice.post(
            "/trust/root/export/", {"passphrase": PASSPHRASE, "passphrase_confirm": PASSPHRASE}
        ),
        "jobs": as_alice.get("/jobs/"),
        "create": as_alice.post("/repositories/new/", {"gun": "registry.example.com/x"}),
        "bulk": as_alice.post("/repositories/bulk/", {"guns": "registry.example.com/y"}),
        "signers": as_alice.post(f"/repositories/{app.pk}/signers/", {"signer_teams": ["ops"]}),
        "sync": as_alice.post(f"/repositories/{app.pk}/sync/"),
        "delete page": as_alice.get(f"/repositories/{app.pk}/delete/"),
        "delete": as_alice.post(f"/repositories/{app.pk}/delete/"),
    }

    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 403)
    assert (Repository.objects.count(), Job.objects.count()) == before
    assert not RootKeyExport.objects.exists()
    assert list(app.signer_teams.values_list("name", flat=True)) == ["ci"]


# --- Lists ---------------------------------------------------------------------------------


def test_admin_lists_every_repository_with_state_and_signers(as_admin, repositories):
    response = as_admin.get("/repositories/")

    assert response.status_code == 200
    assert [r.gun for r in response.context["page"]] == [
        "registry.example.com/ci/app",
        "registry.example.com/ops/db",
    ]
    assert "badge-pending" in response.text
    assert '<span class="tag" title="ci">ci</span>' in response.text
    assert "New repository" in response.text


def test_member_lists_only_the_repositories_their_teams_sign_read_only(as_alice, repositories):
    response = as_alice.get("/repositories/")

    assert [r.gun for r in response.context["page"]] == [GUN]
    assert "ops/db" not in response.text
    assert "New repository" not in response.text
    assert "/repositories/new/" not in response.text
    # The team filter offers only the teams alice can see.
    assert [team.name for team in response.context["filters"].form.fields["team"].queryset] == [
        "ci"
    ]


def test_non_member_sees_no_repository_and_gets_404_on_one(client, admin, repositories):
    carol = make_user("carol")
    client.force_login(carol)
    app, _ = repositories

    listed = client.get("/repositories/")
    detail = client.get(f"/repositories/{app.pk}/")

    assert list(listed.context["page"]) == []
    assert "None of your teams signs a repository yet." in listed.text
    assert detail.status_code == 404


def test_list_searches_and_filters_by_state_and_team(as_admin, repositories):
    app, db = repositories
    Repository.objects.filter(pk=db.pk).update(state=Repository.State.READY)

    def guns(query: str) -> list[str]:
        return [r.gun for r in as_admin.get(f"/repositories/?{query}").context["page"]]

    assert guns("q=OPS") == [db.gun]
    assert guns("state=ready") == [db.gun]
    assert guns("state=pending") == [app.gun]
    assert guns("team=ci") == [app.gun]
    assert guns("team=ci&state=ready") == []
    assert guns("state=bogus") == [app.gun, db.gun]  # an invalid filter is ignored


def test_list_pages_keep_the_filters(as_admin, admin):
    repositories_create_bulk(
        actor=admin, guns=[f"registry.example.com/app{n:02}" for n in range(30)]
    )

    first = as_admin.get("/repositories/?q=app")
    second = as_admin.get("/repositories/?q=app&page=2")

    assert len(first.context["page"]) == 25
    assert 'href="?q=app&amp;page=2"' in first.text
    assert [r.gun for r in second.context["page"]][-1] == "registry.example.com/app29"
    assert "Page 2 of 2 · 30 repositories" in second.text


def test_jobs_list_filters_by_status_kind_and_gun(as_admin, admin, repositories):
    app, db = repositories
    Job.objects.filter(gun=db.gun).update(status=Job.Status.FAILED, error="Notary said no")
    repository_sync_request(repository=app, actor=admin, cause="test", delay=0)

    def jobs(query: str) -> list[tuple[str, str]]:
        page = as_admin.get(f"/jobs/?{query}").context["page"]
        return [(job.kind, job.gun) for job in page]

    assert jobs("status=failed") == [("initialize", db.gun)]
    assert jobs("status=queued") == [("sync", app.gun), ("initialize", app.gun)]
    assert jobs("kind=sync") == [("sync", app.gun)]
    assert jobs("q=ops/") == [("initialize", db.gun)]
    response = as_admin.get("/jobs/?status=failed")
    assert "Notary said no" in response.text
    assert f'href="/repositories/{db.pk}/"' in response.text


# --- Detail --------------------------------------------------------------------------------


def test_admin_sees_detail_with_jobs_delegations_and_actions(as_admin, repositories, alice):
    app, _ = repositories
    Repository.objects.filter(pk=app.pk).update(
        drift={"missing": {"targets/ci": ["a" * 64]}, "unexpected": {}},
        delegations=[{"role": "targets/ci", "key_ids": ["b" * 64]}],
    )

    response = as_admin.get(f"/repositories/{app.pk}/")

    assert response.status_code == 200
    text = response.text
    assert GUN in text
    assert "Sync now" in text
    assert f'href="/repositories/{app.pk}/delete/"' in text
    assert "Change signer teams" in text
    assert response.context["teams_form"]["signer_teams"].value() == ["ci"]
    assert "Missing from <code>targets/ci</code>" in text
    assert "<code>targets/ci</code>" in text
    assert "bbbbbbbbbbbb" in text
    (job,) = response.context["jobs"]
    assert 'data-live-jobs="/api/v1/jobs/"' in text
    assert f'data-job-id="{job.pk}"' in text
    assert f'href="/jobs/{job.pk}/"' in text
    assert 'data-job-status="queued"' in text


def test_member_sees_detail_read_only(as_alice, repositories):
    app, _ = repositories

    response = as_alice.get(f"/repositories/{app.pk}/")

    assert response.status_code == 200
    assert GUN in response.text
    assert "Not checked yet" in response.text
    assert "Sync now" not in response.text
    assert "/delete/" not in response.text
    assert "teams_form" not in response.context
    assert len(response.context["jobs"]) == 1


def test_in_step_shows_when_drift_was_checked_and_none_found(as_admin, repositories):
    app, _ = repositories
    Repository.objects.filter(pk=app.pk).update(drift=None, drift_checked_at="2025-01-01T00:00Z")

    assert "In step" in as_admin.get(f"/repositories/{app.pk}/").text


# --- Writes --------------------------------------------------------------------------------


def test_admin_creates_a_repository_and_lands_on_it_with_the_job_queued(as_admin, teams):
    response = as_admin.post(
        "/repositories/new/", {"gun": GUN, "signer_teams": ["ci"]}, follow=True
    )

    repository = Repository.objects.get(gun=GUN)
    assert response.redirect_chain[-1][0] == f"/repositories/{repository.pk}/"
    assert messages_of(response) == [f"Repository {GUN} created; its initialisation is queued."]
    assert list(repository.signer_teams.values_list("name", flat=True)) == ["ci"]
    (job,) = Job.objects.all()
    assert (job.kind, job.status, job.repository_id) == ("initialize", "queued", repository.pk)
    assert 'data-job-status="queued"' in response.text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"gun": "Bad//gun"}, "gun", "is not a repository name Docker accepts: registry host"),
        ({"gun": GUN, "signer_teams": ["ci", "nope"]}, "signer_teams", "Unknown team: nope."),
        ({"gun": ""}, "gun", "This field is required."),
    ],
)
def test_create_shows_service_errors_on_the_form_and_creates_nothing(
    as_admin, teams, data, field, message
):
    response = as_admin.post("/repositories/new/", data)

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response, "create_form")[field])
    assert message.replace("'", "&#x27;")[:20] in response.text
    assert not Repository.objects.exists()
    assert not Job.objects.exists()


def test_create_of_a_managed_gun_is_a_form_error(as_admin, repositories):
    response = as_admin.post("/repositories/new/", {"gun": GUN})

    assert form_errors(response, "create_form") == {"gun": ["Gatehouse manages this GUN already."]}
    assert Job.objects.count() == 2


def test_bulk_creates_and_reports_created_and_skipped(as_admin, repositories):
    guns = f"\n{GUN}\nregistry.example.com/new/one\n  registry.example.com/new/two  \n\n"

    response = as_admin.post(
        "/repositories/bulk/", {"guns": guns, "signer_teams": ["ops"]}, follow=True
    )

    new = Repository.objects.filter(gun__startswith="registry.example.com/new/").order_by("pk")
    first, second = new
    assert second.pk == first.pk + 1
    assert response.redirect_chain[-1][0] == f"/repositories/?batch={first.pk}-{second.pk}"
    assert messages_of(response) == [f"2 repositories created; skipped, managed already: {GUN}."]
    assert '<strong id="batch-counter">0 of 2 ready, 0 failed</strong>' in response.text
    assert {team for r in new for team in r.signer_teams.values_list("name", flat=True)} == {"ops"}
    assert Job.objects.filter(cause="bulk creation").count() == 2


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"guns": "registry.example.com/ok\nBad//gun"},
            "guns",
            "'Bad//gun' is not a repository name Docker accepts",
        ),
        (
            {"guns": "registry.example.com/ok", "signer_teams": ["nope"]},
            "signer_teams",
            "Unknown team: nope.",
        ),
        ({"guns": "\n \n"}, "guns", "This field is required."),
    ],
)
def test_bulk_errors_create_nothing(as_admin, teams, data, field, message):
    response = as_admin.post("/repositories/bulk/", data)

    assert response.status_code == 200
    assert any(error.startswith(message) for error in form_errors(response, "bulk_form")[field])
    assert not Repository.objects.exists()
    assert not Job.objects.exists()


def test_changing_signer_teams_queues_a_sync(as_admin, repositories):
    app, _ = repositories

    response = as_admin.post(
        f"/repositories/{app.pk}/signers/", {"signer_teams": ["ci", "ops"]}, follow=True
    )

    assert response.redirect_chain[-1][0] == f"/repositories/{app.pk}/"
    assert messages_of(response) == [f"Signer teams of {GUN} saved; a sync to Notary is queued."]
    assert sorted(app.signer_teams.values_list("name", flat=True)) == ["ci", "ops"]
    (sync,) = Job.objects.filter(repository=app, kind="sync")
    assert (sync.status, sync.cause) == ("queued", "signer teams changed")


def test_signer_teams_with_an_unknown_team_change_nothing(as_admin, repositories):
    app, _ = repositories

    response = as_admin.post(f"/repositories/{app.pk}/signers/", {"signer_teams": ["ops", "nope"]})

    assert response.status_code == 200
    assert form_errors(response, "teams_form") == {"signer_teams": ["Unknown team: nope."]}
    assert list(app.signer_teams.values_list("name", flat=True)) == ["ci"]
    assert not Job.objects.filter(kind="sync").exists()


def test_removing_every_signer_team_queues_a_sync(as_admin, repositories):
    app, _ = repositories

    as_admin.post(f"/repositories/{app.pk}/signers/", {})

    assert not app.signer_teams.exists()
    assert Job.objects.filter(repository=app, kind="sync").count() == 1


def test_sync_now_queues_one_sync(as_admin, repositories):
    app, _ = repositories

    response = as_admin.post(f"/repositories/{app.pk}/sync/", follow=True)
    as_admin.post(f"/repositories/{app.pk}/sync/")

    assert messages_of(response) == [f"Sync of {GUN} queued."]
    (sync,) = Job.objects.filter(repository=app, kind="sync")
    assert (sync.status, sync.cause) == ("queued", "sync asked for")


def test_delete_asks_for_confirmation_then_queues_a_delete_job(as_admin, repositories):
    app, _ = repositories

    confirm = as_admin.get(f"/repositories/{app.pk}/delete/")
    assert confirm.status_code == 200
    assert f'Delete repository <span class="mono">{GUN}</span>?' in confirm.text
    assert not Job.objects.filter(kind="delete").exists()

    response = as_admin.post(f"/repositories/{app.pk}/delete/", follow=True)

    assert response.redirect_chain[-1][0] == f"/repositories/{app.pk}/"
    assert messages_of(response)[0].startswith(f"Deletion of {GUN} queued")
    (job,) = Job.objects.filter(kind="delete")
    assert (job.status, job.repository_id) == ("queued", app.pk)
    assert 'data-gone-url="/repositories/"' in response.text


def test_writes_on_an_unknown_repository_are_404(as_admin):
    assert as_admin.post("/repositories/999/sync/").status_code == 404
    assert as_admin.get("/repositories/999/delete/").status_code == 404


# --- Trust root ------------------------------------------------------------------------------


def test_trust_root_shows_the_key_id_and_the_pinning_snippet(as_admin, repositories):
    custody.root_key()
    response = as_admin.get("/trust/root/")

    key_id = root_key_ensure()[0]
    assert response.status_code == 200
    assert key_id in response.text
    assert "&quot;registry.example.com/ci/app&quot;: [\n" in response.text
    assert "&quot;registry.example.com/ops/db&quot;: [\n" in response.text
    assert "registry.example.com/*" not in response.context["daemon_json"]
    assert f"&quot;{key_id}&quot;" in response.text
    assert '"mode": "enforced"' in response.context["daemon_json"]
    assert "Gatehouse records who exported it" in response.text


def test_trust_root_says_there_is_no_root_key_yet_and_makes_none(as_admin):
    keys = CustodyKey.objects.count()

    response = as_admin.get("/trust/root/")

    assert response.status_code == 200
    assert response.context["root_key_id"] is None
    assert "No root key yet." in response.text
    assert "<code>python manage.py root_key</code>" in response.text
    assert "Nothing to export until the root key is made." in response.text
    assert 'action="/trust/root/export/"' not in response.text
    assert 'id="root-key-id"' not in response.text
    assert CustodyKey.objects.count() == keys


def test_exporting_before_the_root_key_exists_exports_nothing_and_says_why(as_admin):
    keys = CustodyKey.objects.count()

    response = as_admin.post(
        "/trust/root/export/", {"passphrase": PASSPHRASE, "passphrase_confirm": PASSPHRASE}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert form_errors(response, "export_form") == {"__all__": [custody.ROOT_KEY_MISSING]}
    assert "Nothing to export until the root key is made." in response.text
    assert not RootKeyExport.objects.exists()
    assert CustodyKey.objects.count() == keys


def test_export_downloads_an_encrypted_pem_records_it_and_ends_the_warning(as_admin, admin):
    key_id = root_key_ensure()[0]
    assert BANNER in as_admin.get("/repositories/").text

    response = as_admin.post(
        "/trust/root/export/", {"passphrase": PASSPHRASE, "passphrase_confirm": PASSPHRASE}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    assert response["Content-Disposition"] == 'attachment; filename="gatehouse-root-key.pem"'
    assert response["Cache-Control"] == "no-store"
    assert response.content.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = serialization.load_pem_private_key(response.content, PASSPHRASE.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    # A wrong passphrase fails to decrypt; OpenSSL words it differently from time to time.
    with pytest.raises(ValueError):  # noqa: PT011
        serialization.load_pem_private_key(response.content, b"wrong-passphrase!!")
    assert RootKeyExport.objects.get().actor == admin
    page = as_admin.get("/trust/root/")
    assert BANNER not in page.text
    assert "Exported" in page.text
    assert messages_of(page)[0].startswith("Root key exported")
    assert root_key_ensure()[0] == key_id


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"passphrase": "too-short", "passphrase_confirm": "too-short"},
            "passphrase",
            "Use at least 12 characters.",
        ),
        (
            {"passphrase": PASSPHRASE, "passphrase_confirm": PASSPHRASE + "!"},
            "passphrase_confirm",
            "The two passphrases do not match.",
        ),
    ],
)
def test_a_bad_passphrase_is_a_form_error_and_exports_nothing(as_admin, data, field, message):
    root_key_ensure()
    response = as_admin.post("/trust/root/export/", data)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert form_errors(response, "export_form") == {field: [message]}
    assert not RootKeyExport.objects.exists()
    assert BANNER in response.text


def test_the_warning_is_for_admins_only_and_links_to_the_trust_root(as_admin, client, alice):
    assert BANNER not in as_admin.get("/").text  # no root key yet: nothing to export
    root_key_ensure()
    admin_page = as_admin.get("/")
    client.force_login(alice)
    alice_page = client.get("/")

    assert BANNER in admin_page.text
    assert 'href="/trust/root/">Export it on the Trust root page' in admin_page.text
    assert BANNER not in alice_page.text


def test_the_warning_costs_one_query_for_admins_and_none_for_others(
    client, admin, alice, django_assert_num_queries
):
    from django.test import RequestFactory

    from trust.context_processors import root_key_warning

    root_key_ensure()
    request = RequestFactory().get("/")
    request.user = alice
    with django_assert_num_queries(0):
        assert root_key_warning(request) == {}
    request.user = admin
    with django_assert_num_queries(1):
        assert root_key_warning(request)["root_key_unexported"]() is True


def test_admin_sidebar_links_the_trust_root(as_admin):
    nav = as_admin.get("/jobs/").text.split('<nav aria-label="Console">')[1].split("</nav>")[0]

    assert 'href="/trust/root/">Trust root</a>' in nav
    assert 'href="/jobs/" aria-current="page">Jobs</a>' in nav


def test_a_job_finishing_while_the_page_is_read_shows_its_repository_as_it_left_it(
    as_admin, admin, monkeypatch, settings
):
    """A job that finishes between the page's reads must not show "Succeeded" beside a
    "Pending" repository: with no job left to follow, the page would never reload."""
    from trust import selectors

    settings.NOTARY_URL = "http://127.0.0.1:9"  # the signed-tags card finds it unreachable
    repository, job = repository_create(actor=admin, gun=GUN_FINISHING, signer_team_names=[])
    job_list = selectors.job_list

    def finishing_meanwhile(*, viewer):
        Repository.objects.filter(pk=repository.pk).update(state=Repository.State.READY)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
        return job_list(viewer=viewer)

    monkeypatch.setattr(selectors, "job_list", finishing_meanwhile)

    page = as_admin.get(f"/repositories/{repository.pk}/")

    assert 'data-job-status="succeeded"' in page.text
    assert 'data-repository-state="ready"' in page.text
    assert 'data-repository-state="pending"' not in page.text
