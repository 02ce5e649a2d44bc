"""The repositories, jobs and root pins reads: the same statements for any number of rows,
and what is worked out once per response (links, the timezone, the keys a delegation
names) still right for every row."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from gatehouse.api import DateTimeField, IdentityLinkField
from tests.factories import make_team, make_user
from tests.trust.helpers import signing_key_of
from trust import custody, selectors
from trust.models import Job, Repository, RootKeyExport
from trust.notary.keys import (
    canonical_key_id,
    certificate_tuf_key,
    generate_ecdsa_key,
    root_certificate,
)
from trust.pins import root_key_pin_create
from trust.services.repositories import repository_create

pytestmark = pytest.mark.django_db

CUSTODIAN_LABEL = "Gatehouse custodian (keeps remaining signers able to sign)"


def read(client, path: str) -> tuple[int, dict]:
    """The statements a GET ran, and its body."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(queries), response.json()


def test_the_job_list_costs_the_same_statements_for_any_number_of_jobs(api, admin):
    """Each job names who caused it, read with the job, not one query per person."""
    client = api(admin)

    def add_jobs(start: int, count: int) -> None:
        for number in range(start, start + count):
            Job.objects.create(
                kind="sync",
                gun=f"registry.example.com/ci/app{number}",
                caused_by=make_user(f"dev{number}"),
            )

    add_jobs(0, 1)
    few, _ = read(client, "/api/v1/jobs/")
    add_jobs(1, 9)
    many, body = read(client, "/api/v1/jobs/")

    assert many == few
    assert [job["caused_by"] for job in body["results"]] == [f"dev{n}" for n in range(9, -1, -1)]
    for job in body["results"]:
        assert job["url"] == f"http://testserver{reverse('job-detail', args=[job['id']])}"


def test_the_pin_list_costs_the_same_statements_for_any_number_of_pins(api, admin):
    client = api(admin)

    def add_pins(start: int, count: int) -> None:
        for number in range(start, start + count):
            root_key_pin_create(
                actor=make_user(f"admin{number}", is_admin=True),
                pattern=f"vendor-{number}.example.com/*",
                key_ids=[f"{number:064x}"],
            )

    add_pins(0, 1)
    few, _ = read(client, "/api/v1/trust/pins/")
    add_pins(1, 9)
    many, body = read(client, "/api/v1/trust/pins/")

    assert many == few
    assert [pin["created_by"] for pin in body["results"]] == [f"admin{n}" for n in range(10)]


@pytest.fixture
def delegating(admin, alice):
    """``make`` makes repositories whose published delegations name every kind of key: a person's,
    the custodian, a key nobody here owns that the published targets holds (shown by its
    canonical ID), and one it does not hold (shown as it is)."""
    key, _ = signing_key_of(alice)
    make_team("qa", members=(alice,), actor=admin)
    make_team("ci", members=(alice,), actor=admin)
    custodian = custody.custodian_key()
    root = custody.root_key()
    certificate = root_certificate(generate_ecdsa_key(), "registry.example.com/vendor/app")
    outside = certificate_tuf_key(certificate)
    assert canonical_key_id(certificate) != outside.key_id
    missing = "f" * 64
    expected_keys = [
        {"id": key.id, "username": "alice", "label": key.label},
        {"id": custodian.key_id, "username": None, "label": CUSTODIAN_LABEL},
        {"id": canonical_key_id(certificate), "username": None, "label": ""},
        {"id": missing, "username": None, "label": ""},
    ]

    def make(number: int, *, adopted: bool = False) -> Repository:
        repository, _ = repository_create(
            actor=admin, gun=f"registry.example.com/ci/app{number}", signer_team_names=["qa", "ci"]
        )
        Repository.objects.filter(pk=repository.pk).update(
            delegations=[
                {"role": "targets/releases", "key_ids": [key.tuf_key_id, custodian.key_id]},
                {"role": "targets/alice", "key_ids": [outside.key_id, missing]},
            ],
            notary_state={
                "targets": {"delegations": {"keys": {outside.key_id: outside.to_json()}}}
            },
            adopted=adopted,
            pinned_root_key_ids=["ab" * 32] if adopted else [],
        )
        return repository

    return SimpleNamespace(
        make=make,
        delegations=[
            {"role": "targets/releases", "keys": expected_keys[:2]},
            {"role": "targets/alice", "keys": expected_keys[2:]},
        ],
        root_key_id=root.key_id,
    )


def test_repositories_show_every_kind_of_delegated_key_in_the_same_statements(
    api, admin, delegating
):
    """The list leaves the published targets unread but for the keys nobody here owns: one
    statement more for them, whatever the number of repositories."""
    client = api(admin)
    first = delegating.make(0)
    few, _ = read(client, "/api/v1/repositories/")
    for number in range(1, 6):
        delegating.make(number, adopted=number == 5)
    many, body = read(client, "/api/v1/repositories/")

    assert many == few
    assert len(body["results"]) == 6
    for result in body["results"]:
        assert result["signer_teams"] == ["ci", "qa"]
        assert result["delegations"] == delegating.delegations
        adopted = result["gun"].endswith("app5")
        assert result["root_key_id"] == ("ab" * 32 if adopted else delegating.root_key_id)
        newest = Job.objects.filter(gun=result["gun"]).order_by("-created_at", "-id").first()
        assert result["latest_job"]["id"] == newest.pk
        assert result["latest_job"]["url"].endswith(f"/api/v1/jobs/{newest.pk}/")

    detail_statements, detail = read(client, f"/api/v1/repositories/{first.pk}/")
    assert detail == next(r for r in body["results"] if r["id"] == first.pk)
    assert detail_statements <= many
    # The console's page reads whole rows, the published targets with them.
    details = selectors.repository_details([Repository.objects.get(pk=first.pk)])
    assert details.delegations[first.pk] == delegating.delegations


def test_links_are_the_ones_drf_reverses_for_any_key_and_format():
    request = Request(APIRequestFactory().get("/api/v1/jobs/", {"format": "json"}))

    class Links(serializers.Serializer):
        once = IdentityLinkField(view_name="job-detail")
        each = serializers.HyperlinkedIdentityField(view_name="job-detail")

    shown = [SimpleNamespace(pk=key) for key in (7, 7_309_214_655_801_337, 12, "a b", "x")]
    for context in ({"request": request}, {"request": request, "format": "json"}):
        for row in Links(shown, many=True, context=context).data:
            assert row["once"] == row["each"]
    assert Links(shown[0], context={"request": request}).data["once"] == (
        "http://testserver/api/v1/jobs/7/?format=json"
    )


def test_dates_follow_the_timezone_current_for_each_response():
    """The timezone is read once per response, never kept from one to the next."""
    when = SimpleNamespace(at=dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC))

    class Dates(serializers.Serializer):
        once = DateTimeField(source="at")
        each = serializers.DateTimeField(source="at")

    (utc,) = Dates([when], many=True, context={}).data
    assert utc["once"] == utc["each"] == "2026-07-01T12:00:00Z"
    with timezone.override("Europe/Paris"):
        paris = Dates([when, when], many=True, context={}).data
    assert [row["once"] for row in paris] == [row["each"] for row in paris]
    assert paris[0]["once"] == "2026-07-01T14:00:00+02:00"


def test_the_root_key_status_is_one_query_and_follows_the_export(admin, django_assert_num_queries):
    assert selectors.root_key_status() == (None, False)
    root = custody.root_key()
    with django_assert_num_queries(1):
        assert selectors.root_key_status() == (root.key_id, False)
    RootKeyExport.objects.create(actor=admin)
    assert selectors.root_key_status() == (root.key_id, True)


def test_a_job_shows_its_caused_by_and_dates_as_before(api, admin):
    job = Job.objects.create(kind="sync", gun="registry.example.com/ci/app", caused_by=admin)
    Job.objects.filter(pk=job.pk).update(
        started_at=timezone.now(), finished_at=timezone.now() + dt.timedelta(seconds=1)
    )
    job.refresh_from_db()

    body = api(admin).get(f"/api/v1/jobs/{job.pk}/").json()

    assert body["caused_by"] == admin.username
    for field in ("created_at", "started_at", "finished_at"):
        assert body[field] == serializers.DateTimeField().to_representation(getattr(job, field))
    assert body["url"] == f"http://testserver/api/v1/jobs/{job.pk}/"
