"""The content-trust policy API, and evaluations that need no Notary."""

import socket

import pytest

from accounts.services import team_member_add
from policy.explanations import evaluation_explained
from policy.models import PolicyVersion
from policy.selectors import policy_get
from tests.factories import make_team
from tests.policy.test_next_steps import GUN, A, check, identities, trust
from trust.models import Repository
from trust.services.repositories import repository_create
from trust.trust_data import forget

pytestmark = pytest.mark.django_db

POLICY = {"enabled": True, "mode": "enforced", "signing_teams": ["ci"], "allow_repos": []}


@pytest.fixture
def teams(admin):
    make_team("ci", actor=admin)
    make_team("dev", actor=admin)


def test_anyone_reads_the_policy_admins_change_it(api, admin, alice, teams):
    assert api(alice).get("/api/v1/policy/content-trust/").json()["enabled"] is False
    assert api().get("/api/v1/policy/content-trust/").status_code == 401
    assert api(alice).put("/api/v1/policy/content-trust/", POLICY, format="json").status_code == 403

    response = api(admin).put("/api/v1/policy/content-trust/", POLICY, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] == ["enabled", "signing_teams"]
    assert body["signing_teams"] == ["ci"]
    assert body["exempt_namespaces"] == ["kube-system"]
    assert body["version"] == 1
    assert body["updated_by"] == "root"
    again = api(admin).put("/api/v1/policy/content-trust/", POLICY, format="json").json()
    assert again["changed"] == []
    assert again["version"] == 1
    version = PolicyVersion.objects.get()
    assert version.changed == ["enabled", "default.require"]
    assert version.policy == {  # the whole document: the settings and the kept exemption rule
        "enabled": True,
        "default": {
            "mode": "enforced",
            "require": {"match": "all", "teams": [{"team": "ci", "count": 1}]},
        },
        "rules": [
            {
                "name": "exempt-namespaces",
                "images": [],
                "namespaces": ["kube-system"],
                "mode": "off",
                "require": {"match": "all", "teams": []},
            }
        ],
    }
    assert version.actor == admin


def test_new_repositories_take_the_signing_teams(api, admin, teams):
    api(admin).put("/api/v1/policy/content-trust/", POLICY, format="json")
    repository, _ = repository_create(actor=admin, gun="registry.example.com/ci/app")
    assert [team.name for team in repository.signer_teams.all()] == ["ci"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mode": "lenient"}, "mode"),
        ({"signing_teams": ["ghost"]}, "signing_teams"),
        ({"signing_teams": "ci"}, "signing_teams"),
        ({"allow_repos": ["Upper/Case"]}, "allow_repos"),
        ({"allow_repos": ["has space"]}, "allow_repos"),
        ({"enabled": "sometimes"}, "enabled"),
        ({"enabled": None}, "enabled"),
    ],
)
def test_bad_policy_input_is_a_400_and_changes_nothing(api, admin, teams, change, field):
    response = api(admin).put("/api/v1/policy/content-trust/", {**POLICY, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    policy = policy_get()
    assert policy.enabled is False
    assert policy.version == 0
    assert not PolicyVersion.objects.exists()


def test_evaluation_without_notary_when_disabled_or_exempt(api, admin, alice, teams):
    disabled = api(alice).post("/api/v1/policy/evaluate/", {"image": "nginx"}, format="json")
    assert disabled.status_code == 200
    assert disabled.json()["decision"] == "not_enforced"
    assert disabled.json()["image"] == "docker.io/library/nginx:latest"
    assert disabled.json()["gun"] == "docker.io/library/nginx"

    api(admin).put(
        "/api/v1/policy/content-trust/",
        {**POLICY, "allow_repos": ["registry.example.com/public/*"]},
        format="json",
    )
    exempt = (
        api(alice)
        .post(
            "/api/v1/policy/evaluate/",
            {"image": "registry.example.com/public/tool:3"},
            format="json",
        )
        .json()
    )
    assert exempt["decision"] == "allowed"
    assert any("registry.example.com/public/*" in reason for reason in exempt["reasons"])
    assert (exempt["rule"]["name"], exempt["mode"]) == ("exempt-repositories", "off")


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_evaluation_reads_its_token_and_one_generation(
    api, admin, alice, teams, method, django_assert_max_num_queries
):
    """An image that passes has nothing to explain: beside the evaluation's own generation
    check, only who may see its signers is read (nothing at all for an admin)."""
    for viewer, statements in ((admin, 2), (alice, 3)):
        ask = getattr(api(viewer), method)
        data = {"image": "nginx"}
        first = ask("/api/v1/policy/evaluate/", data, format="json")  # inputs read once
        assert first.status_code == 200
        with django_assert_max_num_queries(statements):
            again = ask("/api/v1/policy/evaluate/", data, format="json")
        assert again.json() == first.json()
        assert again.json()["decision"] == "not_enforced"


def test_an_explanation_reads_its_repositorys_signer_teams_and_viewers_afresh(
    admin, alice, django_assert_num_queries
):
    ci, ops = make_team("ci", actor=admin), make_team("ops", actor=admin)
    repository = Repository.objects.create(gun=GUN)
    repository.signer_teams.set([ci])
    in_ops = identities(teams={"ops"})
    signed = trust(targets_releases={"1.0": A}, targets_jenkins={"1.0": A})
    failing = check("1.0", signed, in_ops)

    def explained(viewer):
        return evaluation_explained(viewer=viewer, evaluation=failing, identities=in_ops)

    _, redacted, (step,) = explained(alice)
    assert redacted
    assert "jenkins" not in step.why
    _, redacted, (step,) = explained(admin)
    assert not redacted
    assert "jenkins is no longer in ci" in step.why

    repository.signer_teams.set([ci, ops])  # jenkins signs for the repository again
    team_member_add(actor=admin, team=ci, user=alice)
    _, redacted, (step,) = explained(alice)
    assert not redacted
    assert "no longer" not in step.why

    passing = check("1.0", signed, identities())
    with django_assert_num_queries(0):
        assert evaluation_explained(viewer=admin, evaluation=passing) == (passing, False, ())


@pytest.mark.parametrize("image", ["", "Not A Valid::ref", "app@sha256:abc", "http://x/y", " "])
def test_a_malformed_reference_is_a_400_naming_image(api, alice, image):
    response = api(alice).post("/api/v1/policy/evaluate/", {"image": image}, format="json")
    assert response.status_code == 400
    assert "image" in response.json()


def test_an_unreachable_notary_is_a_503(api, admin, alice, teams, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.NOTARY_URL = f"http://127.0.0.1:{port}"
    forget()
    api(admin).put("/api/v1/policy/content-trust/", POLICY, format="json")
    response = api(alice).post(
        "/api/v1/policy/evaluate/", {"image": "registry.example.com/ci/app:1.0"}, format="json"
    )
    assert response.status_code == 503
    assert "Notary cannot be reached" in response.json()["detail"]
    assert (
        api().post("/api/v1/policy/evaluate/", {"image": "nginx"}, format="json").status_code == 401
    )


def test_the_admission_decision_log_is_for_admins_only(api, admin, alice):
    from policy.models import AdmissionDecision

    AdmissionDecision.objects.create(
        uid="u-1",
        webhook="validate",
        namespace="prod",
        kind="Deployment",
        name="web",
        operation="CREATE",
        allowed=False,
        failing=[{"image": "registry.example.com/ci/app:2.0", "reasons": ["unsigned"]}],
    )
    assert api().get("/api/v1/admission/decisions/").status_code == 401
    refused = api(alice).get("/api/v1/admission/decisions/")
    assert refused.status_code == 403
    assert "prod" not in refused.content.decode()
    listed = api(admin).get("/api/v1/admission/decisions/")
    assert listed.status_code == 200
    assert listed["Cache-Control"] == "no-store"
    body = listed.json()
    assert body["count"] == 1
    decision = body["results"][0]
    assert (decision["namespace"], decision["name"], decision["allowed"]) == ("prod", "web", False)
    assert decision["failing"] == [
        {"image": "registry.example.com/ci/app:2.0", "reasons": ["unsigned"]}
    ]
