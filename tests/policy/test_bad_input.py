"""Bad input to the policy endpoints is a 4xx, never a 500: bodies that are not objects, lone
surrogates, JSON nested thousands deep, and NUL characters in an admission review."""

import io
import json
import logging
import socket
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from policy.services import policy_update
from tests.factories import make_team
from trust.trust_data import forget

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
VALIDATE = "/api/v1/admission/validate/"
POLICY = "/api/v1/policy/content-trust/"
EVALUATE = "/api/v1/policy/evaluate/"
DEEP = "[" * 5000 + "]" * 5000


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def depth(value) -> int:
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max(map(depth, items), default=0)
    return 0


@pytest.fixture
def review_client(db):
    """Posts as the Kubernetes API server's service account; answers the decoded JSON."""
    out = io.StringIO()
    call_command("admission_service_account", "kube-apiserver", stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}")

    def post(path: str, document, *, status: int = 200) -> dict:
        body = document if isinstance(document, str) else json.dumps(document)
        response = client.generic("POST", path, body, content_type="application/json")
        assert response.status_code == status, response.content
        return response.json()

    return post


@pytest.fixture
def enforced(admin, settings):
    """Content trust enforced, with a Notary nothing listens on: every image is denied and
    the denial recorded."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        settings.NOTARY_URL = f"http://127.0.0.1:{sock.getsockname()[1]}"
    forget()
    make_team("ci", actor=admin)
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    yield
    forget()


def put_policy(client, body: str):
    return client.put(POLICY, body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "kind"), [("1", "int"), ("null", "NoneType"), ('"on"', "str"), ("[]", "list")]
)
def test_a_policy_that_is_not_an_object_is_a_400(api, admin, body, kind):
    response = put_policy(api(admin), body)
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]
    }


def test_a_lone_surrogate_in_the_mode_is_a_400_not_an_echo_that_cannot_be_encoded(api, admin):
    make_team("ci", actor=admin)
    body = '{"enabled": true, "mode": "\\ud800", "signing_teams": ["ci"], "allow_repos": []}'
    response = put_policy(api(admin), body)
    assert response.status_code == 400
    assert "lone surrogates" in response.json()["detail"]


def test_an_evaluation_nested_5000_deep_is_a_400_and_logs_no_traceback(api, alice, caplog):
    with caplog.at_level(logging.INFO):
        response = api(alice).post(EVALUATE, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested deeper than 64 levels."}
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("body", [DEEP, '{"request": ' * 5000 + "{}" + "}" * 5000])
def test_an_admission_review_nested_5000_deep_is_a_400_and_logs_no_traceback(
    review_client, body, caplog
):
    answer = review_client(VALIDATE, body, status=400)
    assert "JSON nested deeper than 64 levels" in answer["detail"]
    assert not [record for record in caplog.records if record.exc_info]


def test_a_lone_surrogate_in_an_admission_review_is_a_400(review_client, enforced):
    document = json.dumps(load("pod.json")).replace("shop/web:1.4.2", "shop/web\\udc00:1.4.2")
    answer = review_client(VALIDATE, document, status=400)
    assert "lone surrogates" in answer["detail"]


def test_a_real_review_with_managed_fields_is_well_within_the_depth_limit(review_client):
    """``managedFields`` mirror the object's deepest paths with ``f:`` keys: the deepest part
    of a real review, here 19 levels."""
    document = load("cronjob.json")
    path = ["f:spec", "f:jobTemplate", "f:spec", "f:template", "f:spec", "f:containers"]
    path += ['k:{"name":"report"}', "f:env", 'k:{"name":"TOKEN"}', "f:valueFrom"]
    path += ["f:secretKeyRef", "f:key"]
    fields: dict = {}
    node = fields
    for key in path:
        node[key] = {}
        node = node[key]
    document["request"]["object"]["metadata"]["managedFields"] = [
        {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields}
    ]
    assert depth(document) == 19
    assert review_client(VALIDATE, document)["response"]["allowed"] is True


@pytest.mark.parametrize(
    "path",
    [
        ("request", "uid"),
        ("request", "namespace"),
        ("request", "name"),
        ("request", "object", "spec", "containers", 0, "image"),
        ("request", "object", "metadata", "annotations", "note"),
    ],
)
def test_a_nul_anywhere_in_an_admission_review_is_a_400(review_client, enforced, path):
    """Names, images and messages of a review are recorded; PostgreSQL stores no NUL."""
    document = load("pod.json")
    node = document
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[path[-1]] = "x\x00y"
    answer = review_client(VALIDATE, document, status=400)
    assert "NUL" in answer["detail"]
