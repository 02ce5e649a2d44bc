"""The whole policy as one document over the API: read, replace under If-Match, preview a
draft, and the versions with their diffs and reverts."""

import copy

import pytest

from audit.models import AuditEntry
from audit.selectors import FieldChange, audit_changes
from policy.models import AdmissionDecision, PolicyVersion
from policy.selectors import policy_current, policy_get
from tests.factories import make_team
from tests.policy.documents import DOCUMENT, PROD

pytestmark = pytest.mark.django_db

URL = "/api/v1/policy/"


@pytest.fixture
def teams(admin):
    make_team("ci", actor=admin)


def put(client, document, version=None, **headers):
    if version is not None:
        headers["HTTP_IF_MATCH"] = f'"{version}"'
    return client.put(URL, document, format="json", **headers)


def with_count(count: int) -> dict:
    document = copy.deepcopy(DOCUMENT)
    document["rules"][0]["require"]["teams"][0]["count"] = count
    return document


def test_anyone_signed_in_reads_the_policy_with_its_version_as_etag(api, alice):
    response = api(alice).get(URL)
    assert response.status_code == 200
    assert response["ETag"] == '"0"'
    body = response.json()
    assert body["version"] == 0
    assert body["enabled"] is False
    assert body["default"]["mode"] == "enforced"
    assert [rule["name"] for rule in body["rules"]] == ["exempt-namespaces"]
    assert (body["updated_by"], body["updated_at"]) == (None, None)
    assert api().get(URL).status_code == 401


def test_a_policy_read_changed_and_put_back_round_trips(api, admin, teams):
    client = api(admin)
    read = client.get(URL)
    document = read.json()
    document.update(enabled=True, rules=[*document["rules"], PROD])
    response = client.put(URL, document, format="json", HTTP_IF_MATCH=read["ETag"])
    assert response.status_code == 200, response.content
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body["version"] == 1
    assert body["updated_by"] == "root"
    assert body["changed"] == [
        "enabled",
        "rules.prod.position",
        "rules.prod.images",
        "rules.prod.namespaces",
        "rules.prod.mode",
        "rules.prod.require",
    ]
    again = client.get(URL)
    assert again["ETag"] == '"1"'
    assert again.json() == {key: value for key, value in body.items() if key != "changed"}
    assert again.json()["rules"][1] == PROD

    unchanged = client.put(URL, again.json(), format="json", HTTP_IF_MATCH=again["ETag"])
    assert unchanged.status_code == 200
    assert unchanged.json()["changed"] == []
    assert unchanged.json()["version"] == 1
    assert PolicyVersion.objects.count() == 1


def test_a_write_made_to_an_older_version_is_a_409_and_changes_nothing(api, admin, teams):
    first = put(api(admin), DOCUMENT, version=0)
    assert first.status_code == 200

    stale = put(api(admin), with_count(2), version=0)
    assert stale.status_code == 409
    assert stale.json()["version"] == 1
    assert "version 1, not 0" in stale.json()["detail"]
    assert stale["ETag"] == '"1"'
    assert api(admin).get(URL).json()["rules"][0]["require"]["teams"][0]["count"] == 1
    assert policy_get().version == 1


def test_a_write_naming_no_version_is_a_428(api, admin, teams):
    response = put(api(admin), DOCUMENT)
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert policy_get().version == 0


def test_the_body_may_name_the_version_instead_of_if_match(api, admin, teams):
    response = put(api(admin), {**DOCUMENT, "version": 0})
    assert response.status_code == 200
    assert response.json()["version"] == 1

    both = put(api(admin), {**with_count(2), "version": 1}, version=0)
    assert both.status_code == 400
    assert list(both.json()) == ["version"]
    for bad in ('W/"1"', '"1', "*", "one"):
        bad_header = put(api(admin), with_count(2), HTTP_IF_MATCH=bad)
        assert bad_header.status_code == 400
        assert "If-Match" in bad_header.json()
    assert put(api(admin), with_count(2), HTTP_IF_MATCH="1").json()["version"] == 2


def rule(**change) -> dict:
    return {"rules": [{**PROD, **change}]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (rule(images=["Upper/Case"]), "rules[0].images[0]"),
        (rule(namespaces=["*"]), "rules[0].namespaces[0]"),
        (rule(require={"teams": [{"team": "ghost"}]}), "rules[0].require.teams[0].team"),
        (rule(require={"teams": [{"team": "ci", "count": 0}]}), "rules[0].require.teams[0].count"),
        (rule(mode="lenient"), "rules[0].mode"),
        (rule(name="Prod"), "rules[0].name"),
        (rule(colour="blue"), "rules[0].colour"),
        ({"default": {"mode": "strict"}}, "default.mode"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_a_bad_document_is_a_400_keyed_by_each_field_path(api, admin, teams, change, field):
    response = put(api(admin), {**DOCUMENT, **change}, version=0)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert policy_get().version == 0
    assert not PolicyVersion.objects.exists()


def test_a_field_left_out_is_required_not_defaulted(api, admin, teams):
    response = put(api(admin), {"enabled": True, "default": DOCUMENT["default"]}, version=0)
    assert response.status_code == 400
    assert response.json() == {
        "rules": ["This field is required: the document is the whole policy."]
    }
    assert not PolicyVersion.objects.exists()


@pytest.mark.parametrize(
    ("url", "method"),
    [(URL, "put"), (f"{URL}preview/", "post"), (f"{URL}versions/1/revert/", "post")],
)
@pytest.mark.parametrize("body", ["[1, 2]", '"policy"', "42", "{not json", "null"])
def test_a_body_that_is_not_a_json_object_is_a_400(api, admin, teams, url, method, body):
    put(api(admin), DOCUMENT, version=0)
    response = getattr(api(admin), method)(
        url, body, content_type="application/json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 400, response.content
    assert policy_get().version == 1


def test_only_admins_write_preview_or_revert(api, admin, alice, teams):
    put(api(admin), DOCUMENT, version=0)
    client = api(alice)
    assert client.get(URL).status_code == 200
    assert put(client, with_count(2), version=1).status_code == 403
    assert client.post(f"{URL}preview/", with_count(2), format="json").status_code == 403
    assert client.post(f"{URL}versions/1/revert/", HTTP_IF_MATCH='"1"').status_code == 403
    assert client.get(f"{URL}versions/").status_code == 200
    assert client.get(f"{URL}versions/1/").status_code == 200
    assert policy_get().version == 1


def admitted(namespace: str, image: str, times: int = 1) -> None:
    for number in range(times):
        AdmissionDecision.objects.create(
            uid=f"{namespace}-{image}-{number}",
            webhook="validate",
            namespace=namespace,
            kind="Pod",
            name="web",
            operation="CREATE",
            allowed=True,
            images=[{"image": image, "examined": False}],
        )


def test_a_preview_says_what_a_draft_would_deny_and_saves_nothing(api, admin, teams):
    admitted("shop", "registry.example.com/prod/web:1", times=3)
    admitted("kube-system", "registry.k8s.io/pause:3.9")
    draft = api(admin).get(URL).json()
    draft.update(enabled=True, rules=[*draft["rules"], PROD])
    response = api(admin).post(f"{URL}preview/?days=30", draft, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["days"] == 30
    assert (body["images"], body["occurrences"], body["judged"]) == (2, 4, 2)
    assert body["newly_denied"] == 3
    assert body["newly_allowed"] == 0
    assert [(c["image"], c["namespace"], c["occurrences"]) for c in body["denied"]] == [
        ("registry.example.com/prod/web:1", "shop", 3)
    ]
    assert body["denied"][0]["before"]["decision"] == "not_enforced"
    assert body["denied"][0]["after"] == {"decision": "denied", "rule": "prod"}
    assert body["denied"][0]["unread"] is True
    assert policy_get().version == 0
    assert not PolicyVersion.objects.exists()
    assert not AuditEntry.objects.filter(action="policy.updated").exists()


@pytest.mark.parametrize("days", ["0", "91", "seven", "-1"])
def test_a_preview_looks_back_1_to_90_days(api, admin, teams, days):
    response = api(admin).post(f"{URL}preview/?days={days}", DOCUMENT, format="json")
    assert response.status_code == 400
    assert "days" in response.json()


def test_a_bad_draft_is_a_400_keyed_by_field_path(api, admin, teams):
    response = api(admin).post(f"{URL}preview/", rule(images=["a b"]), format="json")
    assert response.status_code == 400
    assert "rules[0].images[0]" in response.json()


def test_versions_list_who_changed_what_and_each_diff_reads(api, admin, alice, teams):
    put(api(admin), DOCUMENT, version=0)
    put(api(admin), with_count(2), version=1)

    listed = api(alice).get(f"{URL}versions/")
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 2
    assert [(v["number"], v["actor"]) for v in body["results"]] == [(2, "root"), (1, "root")]
    assert body["results"][0]["changed"] == ["rules.prod.require"]
    assert body["results"][0]["created_at"]

    second = api(alice).get(f"{URL}versions/2/").json()
    assert second["policy"] == with_count(2)
    assert second["diff"] == [
        {"field": "rules.prod.require", "before": "1 of ci", "after": "2 of ci"}
    ]
    first = api(alice).get(f"{URL}versions/1/").json()
    diff = {row["field"]: (row["before"], row["after"]) for row in first["diff"]}
    assert diff["enabled"] == ("false", "true")
    assert diff["default.mode"] == ("enforced", "permissive")
    assert diff["rules.exempt-namespaces.namespaces"] == ("kube-system", None)
    assert diff["rules.prod.require"] == (None, "1 of ci")
    assert api(alice).get(f"{URL}versions/9/").status_code == 404


def test_a_revert_is_a_new_version_equal_to_the_old_one(api, admin, teams):
    put(api(admin), DOCUMENT, version=0)
    put(api(admin), with_count(2), version=1)
    client = api(admin)

    assert client.post(f"{URL}versions/1/revert/").status_code == 428
    stale = client.post(f"{URL}versions/1/revert/", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 409
    assert stale.json()["version"] == 2
    assert client.post(f"{URL}versions/7/revert/", HTTP_IF_MATCH='"2"').status_code == 404

    response = client.post(f"{URL}versions/1/revert/", {"version": 2}, format="json")
    assert response.status_code == 200, response.content
    assert response["ETag"] == '"3"'
    assert response.json()["changed"] == ["rules.prod.require"]
    assert PolicyVersion.objects.get(number=3).policy == PolicyVersion.objects.get(number=1).policy
    read = client.get(URL).json()
    assert {key: read[key] for key in DOCUMENT} == DOCUMENT


def test_each_change_is_audited_with_a_readable_diff(api, admin, teams):
    put(api(admin), DOCUMENT, version=0)
    put(api(admin), with_count(2), version=1)
    api(admin).post(f"{URL}versions/1/revert/", HTTP_IF_MATCH='"2"')

    entries = list(AuditEntry.objects.filter(action="policy.updated").order_by("id"))
    assert len(entries) == 3
    assert all(entry.actor_name == "root" for entry in entries)
    raised, reverted = (audit_changes(e.before, e.after) for e in entries[1:])
    assert FieldChange("rules.prod.require", "1 of ci", "2 of ci") in raised
    assert FieldChange("rules.prod.require", "2 of ci", "1 of ci") in reverted
    assert FieldChange("cause", None, "revert to version 1") in reverted


def test_a_pattern_an_older_grammar_took_is_read_matches_nothing_and_is_refused_on_save(
    api, admin, teams
):
    """A policy migrated from UCP's settings may hold an exemption the grammar now refuses
    (``[abc]`` was once a class): reading the policy never fails on it, it exempts nothing,
    and the next save says why it must go."""
    row = policy_get()
    old = "docker.io/[abc]/x"
    row.enabled = True
    row.document = {
        "default": {"mode": "enforced", "require": {"match": "all", "teams": []}},
        "rules": [
            {
                "name": "exempt-repositories",
                "images": [old],
                "namespaces": [],
                "mode": "off",
                "require": {"match": "all", "teams": []},
            }
        ],
    }
    row.save()
    client = api(admin)
    read = client.get(URL)
    assert read.status_code == 200
    assert read.json()["rules"][0]["images"] == [old]
    assert policy_current().applied("docker.io/a/x").rule.name == "default"  # matches nothing
    saved = client.put(URL, read.json(), format="json", HTTP_IF_MATCH=read["ETag"])
    assert saved.status_code == 400
    assert "must be lowercase" in " ".join(saved.json()["rules[0].images[0]"])


def test_reads_of_the_versions_do_not_grow_with_them(
    api, admin, alice, teams, django_assert_max_num_queries
):
    """The list: the token, the count, the page (without the policies); one version: the
    token, and the version with the policy before it (for its diff)."""
    client = api(alice)
    for count in (1, 2):
        put(api(admin), with_count(count), version=count - 1)
        with django_assert_max_num_queries(3):
            assert client.get(f"{URL}versions/").json()["count"] == count
    put(api(admin), with_count(3), version=2)
    with django_assert_max_num_queries(2):
        third = client.get(f"{URL}versions/3/").json()
    assert third["diff"] == [
        {"field": "rules.prod.require", "before": "2 of ci", "after": "3 of ci"}
    ]


def test_the_policy_read_is_the_rows_at_the_very_next_request(api, admin, alice, teams):
    """A document is read once per process, found again by its JSON: a change made any way
    at all, even straight to the row without a new version, shows at the next read."""
    client = api(alice)
    put(api(admin), DOCUMENT, version=0)
    before = client.get(URL).json()
    assert client.get(URL).json() == before

    row = policy_get()
    row.document = {**row.document, "rules": with_count(2)["rules"]}
    row.enabled = False
    row.save()

    after = client.get(URL).json()
    assert (after["enabled"], after["version"]) == (False, 1)
    assert after["rules"] == with_count(2)["rules"] != before["rules"]
    assert client.get("/api/v1/policy/content-trust/").json()["enabled"] is False
