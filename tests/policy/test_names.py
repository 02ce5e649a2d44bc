"""Names and patterns in the policy: exemptions match by path component and are stored as
Docker normalises them, bad ones are a 400 naming ``allow_repos`` (and an error on the
policy page), and the evaluate API and admission read an image the same way. No Notary is
needed: only disabled and exempt evaluations are made."""

import json
from pathlib import Path

import pytest

from policy.evaluation import needs_trust_data, parse_image_reference
from policy.models import PolicyVersion
from policy.rules import (
    DEFAULT_RULE,
    ENFORCED,
    EXEMPT_REPOSITORIES,
    Policy,
    Requirement,
    Rule,
    with_ucp_settings,
)
from policy.selectors import policy_get, policy_settings
from policy.services import policy_update
from tests.factories import make_team

pytestmark = pytest.mark.django_db

POLICY = {"enabled": True, "mode": "enforced", "signing_teams": ["ci"], "allow_repos": []}
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def teams(admin, alice):
    return make_team("ci", members=(alice,), actor=admin)


def put(api, admin, allow_repos: list[str]):
    return api(admin).put(
        "/api/v1/policy/content-trust/", {**POLICY, "allow_repos": allow_repos}, format="json"
    )


# --- Matching, without a database ---------------------------------------------------------


def exempting(*patterns: str) -> Policy:
    """UCP's ``allow_repos``: the ``exempt-repositories`` rule, mode off."""
    empty = Policy(enabled=False, default=Rule(DEFAULT_RULE, ENFORCED, Requirement()))
    return with_ucp_settings(
        empty, enabled=True, mode=ENFORCED, signing_teams=["ci"], allow_repos=patterns
    )


@pytest.mark.parametrize(
    ("image", "pattern", "exempt"),
    [
        # ``*`` no longer crosses "/": the host cannot be matched further down the path.
        ("evil.io/x.example.com/y:1", "*.example.com/*", False),
        ("evil.io/registry.example.com/public/app", "registry.example.com/public/*", False),
        ("registry.example.com/public/app", "*.example.com/*", False),
        ("registry.example.com/app", "*.example.com/*", True),
        ("registry.example.com/public/a/b", "registry.example.com/public/*", False),
        ("registry.example.com/public/a/b", "registry.example.com/public/**", True),
        ("registry.example.com:5000/public/app", "registry.example.com:5000/public/*", True),
        ("localhost:5000/ci/web:1", "localhost:5000/**", True),
        ("nginx:1.25", "nginx", True),
        ("nginx:1.25", "docker.io/library/nginx", True),
        ("ci/app", "ci/*", True),
        ("ci/app", "docker.io/**", True),
    ],
)
def test_exemptions_match_by_path_component(image: str, pattern: str, exempt: bool):
    policy = exempting(pattern)
    gun = parse_image_reference(image).gun
    assert needs_trust_data(policy, gun) is not exempt
    applied = policy.applied(gun)
    assert applied.rule.name == (EXEMPT_REPOSITORIES if exempt else DEFAULT_RULE)
    assert applied.image == (pattern if exempt else None)


def test_a_stored_pattern_that_exempted_everything_now_exempts_nothing():
    policy = exempting("*")
    assert needs_trust_data(policy, "registry.example.com/ci/app")
    assert policy.applied("registry.example.com/ci/app").rule.name == DEFAULT_RULE


# --- The API and the page ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("*", "would match every repository"),
        ("**", "would match every repository"),
        ("**/**", "would match every repository"),
        ("*/*", "would match every repository"),
        ("*.*/**", "at least one label as written"),
        ("team-*/app", "must stay inside a registry host"),
        ("../../etc/passwd", "not a valid host[:port]"),
        ("registry.example.com/[ab]pp", "path component '[ab]pp'"),
    ],
)
def test_a_bad_pattern_is_a_400_naming_allow_repos(api, admin, teams, pattern, words):
    response = put(api, admin, ["registry.example.com/ok/**", pattern])
    assert response.status_code == 400, response.content
    (message,) = response.json()["allow_repos"]
    assert words in message
    assert policy_get().version == 0
    assert not PolicyVersion.objects.exists()


def test_a_pattern_too_long_says_so_without_repeating_it(api, admin, teams):
    pattern = "registry.example.com/" + "a" * 300
    response = put(api, admin, [pattern])
    assert response.status_code == 400, response.content
    (message,) = response.json()["allow_repos"]
    assert "at most 255 characters" in message
    assert "not a GUN pattern" not in message
    assert "a" * 41 not in message
    assert len(message) < 150


def test_patterns_are_stored_as_docker_normalises_them(api, admin, teams):
    response = put(
        api,
        admin,
        ["nginx", "ci/*", "docker.io/library/nginx", " registry.example.com:5000/sandbox/** "],
    )
    assert response.status_code == 200, response.content
    stored = ["docker.io/library/nginx", "docker.io/ci/*", "registry.example.com:5000/sandbox/**"]
    assert response.json()["allow_repos"] == stored
    assert policy_settings(policy_get())["allow_repos"] == stored
    # Saving what Docker makes of it changes nothing.
    assert put(api, admin, stored).json()["changed"] == []


def test_the_policy_page_shows_why_a_pattern_is_refused(client, admin, teams):
    client.force_login(admin)
    response = client.post(
        "/content-trust/",
        {"enabled": "on", "signing_teams": ["ci"], "mode": "enforced", "allow_repos": "*\n"},
    )
    assert response.status_code == 200
    errors = response.context["policy_form"].errors
    assert list(errors) == ["allow_repos"]
    assert "'*': it would match every repository of every registry" in errors["allow_repos"][0]
    assert "it would match every repository of every registry" in response.text
    assert policy_get().version == 0


# --- Whitespace: the evaluate API and admission read an image the same way ---------------------


def review_of(image: str) -> dict:
    """A recorded Pod review, its one container running ``image``."""
    document = json.loads((FIXTURES / "pod.json").read_text())
    spec = document["request"]["object"]["spec"]
    spec.pop("initContainers", None)
    spec["containers"] = [{"name": "web", "image": image}]
    return document


@pytest.fixture
def review_client(db):
    from rest_framework.test import APIClient

    from policy.services import admission_service_account

    _, token, _, _ = admission_service_account(username="kube-apiserver")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(document: dict) -> dict:
        response = client.generic(
            "POST", "/api/v1/admission/validate/", json.dumps(document), "application/json"
        )
        assert response.status_code == 200, response.content
        return response.json()["response"]

    return post


@pytest.mark.parametrize("image", ["busybox:1.36", "  busybox:1.36 ", "\tbusybox:1.36\n"])
def test_whitespace_around_an_image_is_dropped_by_api_and_admission_alike(
    api, admin, alice, teams, review_client, image
):
    policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["busybox"],
    )
    evaluated = api(alice).post("/api/v1/policy/evaluate/", {"image": image}, format="json")
    assert evaluated.status_code == 200, evaluated.content
    assert evaluated.json()["image"] == "docker.io/library/busybox:1.36"
    assert evaluated.json()["decision"] == "allowed"

    admitted = review_client(review_of(image))
    assert admitted["allowed"] is True, admitted["status"]
    assert (
        "exempt: rule exempt-repositories matches by image pattern docker.io/library/busybox, "
        "and its mode is off" in admitted["status"]["message"]
    )


def test_whitespace_inside_an_image_is_refused_by_api_and_admission_alike(
    api, admin, alice, teams, review_client
):
    policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["busybox"],
    )
    evaluated = api(alice).post("/api/v1/policy/evaluate/", {"image": "busy box"}, format="json")
    assert evaluated.status_code == 400
    assert "it contains whitespace" in evaluated.json()["image"][0]

    admitted = review_client(review_of("busy box"))
    assert admitted["allowed"] is False
    assert "it contains whitespace" in admitted["status"]["message"]
