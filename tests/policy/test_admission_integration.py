"""The admission webhook end to end: a real notary-server, the real ``notary`` CLI signing with
a key from a real Gatehouse bundle, and reviews of a three-container Deployment and of the
other kinds with a pod template (image volumes included), checked against the evaluate API."""

import base64
import copy
import json
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_create, team_member_remove
from policy.evaluation import POLICY_FAILED
from policy.services import admission_service_account, policy_update
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs, signing_key_of
from trust import trust_data
from trust.services.repositories import repository_create

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

RELEASES = "targets/releases"
DIGESTS = {"api": "a1" * 32, "metrics": "b2" * 32, "envoy": "c3" * 32}
SIZE = "1234"
FIXTURE = Path(__file__).parent / "fixtures" / "deployment.json"


@pytest.fixture(autouse=True)
def fresh_trust_cache():
    trust_data.forget()
    yield
    trust_data.forget()


@pytest.fixture
def signed(settings, notary_server, notary_gun, notary_cli_in, admin, tmp_path):
    """A Gatehouse repository for ci, jenkins (in ci) able to sign it, and the policy enforced.

    Returns ``sign(tag, digest)``, which signs as a push with content trust does.
    """
    settings.NOTARY_URL = notary_server.url
    settings.GATEHOUSE_TRUST_REVALIDATE_SECONDS = 0
    jenkins = make_user("jenkins")
    _, pem = signing_key_of(jenkins)
    make_team("ci", members=(jenkins,), actor=admin)
    trust_dir = tmp_path / "jenkins"
    trust_dir.mkdir()
    (trust_dir / "key.pem").write_bytes(pem)
    notary_cli_in(trust_dir, "key", "import", str(trust_dir / "key.pem"))
    repository_create(actor=admin, gun=notary_gun, signer_team_names=["ci"])
    (job,) = run_jobs()
    assert job.status == "succeeded", job.error
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )

    def sign(tag: str, digest: str) -> None:
        for role in (RELEASES, "targets/jenkins"):
            notary_cli_in(
                trust_dir, "addhash", notary_gun, tag, SIZE, "--sha256", digest, "-r", role, "-p"
            )

    return sign


@pytest.fixture
def review(db):
    """POST a review as the API server's service account; returns the ``response``."""
    _, raw_token, _, _ = admission_service_account(username="kube-apiserver")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")

    def post(webhook: str, document: dict) -> dict:
        answer = client.post(f"/api/v1/admission/{webhook}/", document, format="json")
        assert answer.status_code == 200, answer.content
        assert answer.json()["response"]["uid"] == document["request"]["uid"]
        return answer.json()["response"]

    return post


def deployment(gun: str) -> dict:
    """The recorded Deployment, its three containers' images as ``<gun>:<container name>``."""
    document = json.loads(FIXTURE.read_text())
    document["request"]["uid"] = str(uuid.uuid4())
    spec = document["request"]["object"]["spec"]["template"]["spec"]
    spec["containers"] = [
        {"name": name, "image": f"{gun}:{name}"} for name in ("api", "metrics", "envoy")
    ]
    spec.pop("initContainers")
    return document


def apply_patch(document: dict, patch: list[dict]) -> dict:
    """RFC 6902 ``replace`` operations (all admission sends), applied to a copy."""
    result = copy.deepcopy(document)
    for operation in patch:
        assert operation["op"] == "replace"
        *parents, last = operation["path"].lstrip("/").split("/")
        node = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = operation["value"]
        else:
            assert last in node
            node[last] = operation["value"]
    return result


def images_of(obj: dict) -> list[str]:
    return [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]


def test_one_unsigned_image_denies_the_deployment_naming_it(signed, review, notary_gun):
    signed("api", DIGESTS["api"])
    signed("metrics", DIGESTS["metrics"])  # envoy is left unsigned

    response = review("validate", deployment(notary_gun))

    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert message.startswith("Gatehouse content trust (enforced) denied 1 of 3 images: ")
    assert (
        f"[{notary_gun}:envoy] (rule default) image or trust data does not exist for "
        f"{notary_gun}:envoy"
    ) in message
    assert f"{notary_gun}:api" not in message
    assert f"{notary_gun}:metrics" not in message
    assert "patch" not in review("mutate", deployment(notary_gun))


def test_all_signed_is_allowed_and_mutate_pins_each_image_to_the_signed_digest(
    signed, review, notary_gun
):
    for name, digest in DIGESTS.items():
        signed(name, digest)
    document = deployment(notary_gun)

    validated = review("validate", document)
    assert validated["allowed"] is True
    assert "patch" not in validated
    assert "warnings" not in validated

    mutated = review("mutate", document)
    assert mutated["allowed"] is True
    assert mutated["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(mutated["patch"]))
    assert [operation["path"] for operation in patch] == [
        f"/spec/template/spec/containers/{index}/image" for index in range(3)
    ]
    pinned = apply_patch(document["request"]["object"], patch)
    assert images_of(pinned) == [
        f"{notary_gun}@sha256:{DIGESTS[name]}" for name in ("api", "metrics", "envoy")
    ]
    assert "pinned 3 to the signed digest" in mutated["status"]["message"]

    # What was pinned passes again by digest (validate runs after mutate), with no patch.
    again = copy.deepcopy(document)
    again["request"]["object"] = pinned
    repeat = review("mutate", again)
    assert repeat["allowed"] is True
    assert "patch" not in repeat


def test_a_signature_outside_the_team_is_denied_in_the_evaluation_s_words(
    signed, review, notary_gun, admin
):
    for name, digest in DIGESTS.items():
        signed(name, digest)
    jenkins = User.objects.get(username="jenkins")
    team_member_remove(actor=admin, team=jenkins.teams.get(name="ci"), user=jenkins)
    response = review("validate", deployment(notary_gun))
    assert response["allowed"] is False
    assert "denied 3 of 3 images" in response["status"]["message"]
    assert (
        f"[{notary_gun}:api] (rule default) {POLICY_FAILED}; team ci: no current member signed"
        in (response["status"]["message"])
    )


def test_permissive_mode_warns_about_the_unsigned_image_and_pins_the_others(
    signed, review, notary_gun, admin
):
    signed("api", DIGESTS["api"])
    signed("metrics", DIGESTS["metrics"])
    policy_update(
        actor=admin, enabled=True, mode="permissive", signing_team_names=["ci"], allow_repos=[]
    )
    document = deployment(notary_gun)

    response = review("mutate", document)

    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert warning.startswith("Gatehouse content trust (permissive) would deny ")
    assert f"[{notary_gun}:envoy]" in warning
    assert "image or trust data does not exist" in warning
    patch = json.loads(base64.b64decode(response["patch"]))
    assert images_of(apply_patch(document["request"]["object"], patch)) == [
        f"{notary_gun}@sha256:{DIGESTS['api']}",
        f"{notary_gun}@sha256:{DIGESTS['metrics']}",
        f"{notary_gun}:envoy",
    ]


def test_an_admin_token_works_too(signed, notary_gun, admin):
    for name, digest in DIGESTS.items():
        signed(name, digest)
    raw_token, _ = api_token_create(user=admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    answer = client.post("/api/v1/admission/validate/", deployment(notary_gun), format="json")
    assert answer.json()["response"]["allowed"] is True


# --- Image volumes and every kind with a pod template, as the evaluate API sees them ------

FIXTURES = FIXTURE.parent
# Where each recorded object keeps its pod spec.
POD_SPECS = {
    "pod-image-volume.json": ("spec",),
    "replicationcontroller.json": ("spec", "template", "spec"),
    "podtemplate.json": ("template", "spec"),
    "rollout.json": ("spec", "template", "spec"),
}


def with_images(name: str, gun: str) -> tuple[dict, dict]:
    """The recorded object, its pod spec running ``<gun>:api`` and mounting ``<gun>:metrics``
    (volume ``data``) and ``<gun>:envoy`` (volume ``models``) as image volumes; returns the
    document and its pod spec."""
    document = json.loads((FIXTURES / name).read_text())
    document["request"]["uid"] = str(uuid.uuid4())
    spec = document["request"]["object"]
    for key in POD_SPECS[name]:
        spec = spec[key]
    spec["containers"] = [{"name": "api", "image": f"{gun}:api"}]
    spec.pop("initContainers", None)
    spec["volumes"] = [
        {"name": "data", "image": {"reference": f"{gun}:metrics", "pullPolicy": "IfNotPresent"}},
        {"name": "cache", "emptyDir": {}},
        {"name": "models", "image": {"reference": f"{gun}:envoy", "pullPolicy": "IfNotPresent"}},
    ]
    return document, spec


@pytest.fixture
def explain(admin, api):
    """The evaluate (explain) API's answer for an image."""
    client = api(admin)

    def post(image: str) -> dict:
        answer = client.post("/api/v1/policy/evaluate/", {"image": image}, format="json")
        assert answer.status_code == 200, answer.content
        return answer.json()

    return post


@pytest.mark.parametrize("name", sorted(POD_SPECS))
def test_admission_and_the_evaluate_api_agree_on_every_image_of_every_kind(
    signed, review, explain, notary_gun, name
):
    signed("api", DIGESTS["api"])
    signed("metrics", DIGESTS["metrics"])  # envoy, mounted as volume models, is unsigned
    document, _ = with_images(name, notary_gun)
    unsigned = explain(f"{notary_gun}:envoy")
    assert unsigned["decision"] == "denied"
    assert explain(f"{notary_gun}:metrics")["decision"] == "allowed"

    for webhook in ("validate", "mutate"):
        response = review(webhook, document)
        assert response["allowed"] is False
        message = response["status"]["message"]
        assert message == (
            "Gatehouse content trust (enforced) denied 1 of 3 images: "
            f"[{notary_gun}:envoy] (rule {unsigned['rule']['name']}) "
            + "; ".join(unsigned["reasons"])
            + " (used by volume models)"
        )
        assert "patch" not in response


@pytest.mark.parametrize("name", sorted(POD_SPECS))
def test_mutate_pins_image_volumes_to_the_digest_the_evaluate_api_names(
    signed, review, explain, notary_gun, name
):
    for tag, digest in DIGESTS.items():
        signed(tag, digest)
    document, spec = with_images(name, notary_gun)
    digests = {tag: explain(f"{notary_gun}:{tag}")["digest"] for tag in DIGESTS}
    assert digests == {tag: f"sha256:{digest}" for tag, digest in DIGESTS.items()}

    assert review("validate", document)["allowed"] is True
    mutated = review("mutate", document)
    assert mutated["allowed"] is True
    patch = json.loads(base64.b64decode(mutated["patch"]))
    prefix = "".join(f"/{key}" for key in POD_SPECS[name])
    assert patch == [
        {
            "op": "replace",
            "path": f"{prefix}/containers/0/image",
            "value": f"{notary_gun}@{digests['api']}",
        },
        {
            "op": "replace",
            "path": f"{prefix}/volumes/0/image/reference",
            "value": f"{notary_gun}@{digests['metrics']}",
        },
        {
            "op": "replace",
            "path": f"{prefix}/volumes/2/image/reference",
            "value": f"{notary_gun}@{digests['envoy']}",
        },
    ]
    assert "pinned 3 to the signed digest" in mutated["status"]["message"]
    pinned = apply_patch(document["request"]["object"], patch)
    again = copy.deepcopy(document)
    again["request"]["object"] = pinned
    repeat = review("mutate", again)  # what was pinned passes again by digest, no patch
    assert repeat["allowed"] is True
    assert "patch" not in repeat
    assert spec["volumes"][0]["image"]["reference"] == f"{notary_gun}:metrics"  # a copy
