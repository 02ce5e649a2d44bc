"""The Kubernetes admission webhook without Notary: recorded ``AdmissionReview`` documents of
every workload kind (image volumes, custom resources with a pod template, and kinds whose
images cannot be found), answered with real evaluations (policy disabled, exempt, or Notary
out of reach), authentication, the service account and the webhook configuration."""

import base64
import datetime as dt
import io
import json
import socket
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiToken
from policy import admission
from policy.models import AdmissionDecision, PolicyVersion
from policy.selectors import (
    admission_decisions_latest,
    may_review_admission,
    policy_get,
    policy_settings,
)
from policy.services import policy_update
from tests.factories import make_team, make_user
from trust.trust_data import forget

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"
VALIDATE = "/api/v1/admission/validate/"
MUTATE = "/api/v1/admission/mutate/"
CONFIGURATION = "/api/v1/admission/webhook-configuration/"

# Each recorded review's images with the JSON pointer of each container's ``image``.
EXPECTED_IMAGES = {
    "pod.json": [
        ("/spec/containers/0/image", "registry.example.com/shop/web:1.4.2"),
        ("/spec/containers/1/image", "nginx:1.25"),
        ("/spec/initContainers/0/image", "registry.example.com/shop/migrate:1.4.2"),
    ],
    "pod-ephemeral.json": [
        ("/spec/containers/0/image", "registry.example.com/shop/web:1.4.2"),
        ("/spec/ephemeralContainers/0/image", "busybox:1.36"),
    ],
    "deployment.json": [
        ("/spec/template/spec/containers/0/image", "registry.example.com/shop/checkout:2.0"),
        ("/spec/template/spec/containers/1/image", "registry.example.com/shop/metrics-agent:0.9"),
        (
            "/spec/template/spec/containers/2/image",
            "registry.example.com/mesh/envoy:1.29@sha256:" + "e" * 64,
        ),
        ("/spec/template/spec/initContainers/0/image", "busybox:1.36"),
    ],
    "replicaset.json": [
        ("/spec/template/spec/containers/0/image", "registry.example.com/shop/checkout:2.0"),
    ],
    "statefulset.json": [
        ("/spec/template/spec/containers/0/image", "registry.example.com/data/postgres:16.3"),
        (
            "/spec/template/spec/containers/1/image",
            "registry.example.com/data/postgres-exporter:0.15",
        ),
        ("/spec/template/spec/initContainers/0/image", "busybox:1.36"),
    ],
    "daemonset.json": [
        ("/spec/template/spec/containers/0/image", "quay.io/prometheus/node-exporter:v1.8.1"),
    ],
    "job.json": [
        ("/spec/template/spec/containers/0/image", "registry.example.com/shop/search:3.1"),
    ],
    "cronjob.json": [
        (
            "/spec/jobTemplate/spec/template/spec/containers/0/image",
            "registry.example.com/shop/report:5.0",
        ),
        (
            "/spec/jobTemplate/spec/template/spec/containers/1/image",
            "registry.example.com/shop/uploader:1.2",
        ),
        (
            "/spec/jobTemplate/spec/template/spec/initContainers/0/image",
            "registry.example.com/shop/report:5.0",
        ),
    ],
    "replicationcontroller.json": [
        ("/spec/template/spec/containers/0/image", "registry.example.com/shop/legacy-web:0.8"),
        ("/spec/template/spec/initContainers/0/image", "busybox:1.36"),
    ],
    "podtemplate.json": [
        ("/template/spec/containers/0/image", "registry.example.com/shop/worker:4.2"),
    ],
    "pod-image-volume.json": [
        ("/spec/containers/0/image", "registry.example.com/shop/web:1.4.2"),
        ("/spec/volumes/0/image/reference", "registry.example.com/shop/dataset:2024.06"),
        ("/spec/volumes/2/image/reference", "registry.example.com/ml/models@sha256:" + "d" * 64),
    ],
    "rollout.json": [
        ("/spec/template/spec/containers/0/image", "registry.example.com/shop/storefront:3.3"),
        ("/spec/template/spec/volumes/0/image/reference", "registry.example.com/shop/assets:3.3"),
    ],
    "configmap.json": [],
}
# What each image of an object is used by, as a denial names it.
EXPECTED_USED_BY = {
    "pod.json": ["container web", "container proxy", "initContainer migrate"],
    "pod-ephemeral.json": ["container web", "ephemeralContainer debugger-x7k2p"],
    "pod-image-volume.json": ["container web", "volume data", "volume models"],
    "rollout.json": ["container storefront", "volume assets"],
}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def resolve(document: dict, pointer: str):
    node = document
    for part in pointer.lstrip("/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@pytest.fixture
def apiserver(db):
    """The Kubernetes API server's service account, made by the management command."""
    out, err = io.StringIO(), io.StringIO()
    call_command("admission_service_account", "kube-apiserver", stdout=out, stderr=err)
    return out.getvalue().strip()


@pytest.fixture
def review_client(apiserver):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {apiserver}")

    def post(path: str, document, *, status: int = 200) -> dict:
        body = document if isinstance(document, bytes | str) else json.dumps(document)
        response = client.generic("POST", path, body, content_type="application/json")
        assert response.status_code == status, response.content
        return response.json()

    return post


@pytest.fixture
def enforced(admin):
    make_team("ci", actor=admin)
    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )


@pytest.fixture
def notary_down(settings):
    """A Notary URL nothing listens on: every read fails at once with connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.NOTARY_URL = f"http://127.0.0.1:{port}"
    forget()
    yield
    forget()


# --- Reading reviews ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_IMAGES))
def test_every_image_of_every_workload_kind_with_its_json_pointer(name):
    document = load(name)
    review = admission.parse_review(json.dumps(document))
    workload = admission.find_images(review.group, review.kind, review.object)
    assert workload.unrecognised is None
    assert [(use.pointer, use.image) for use in workload.images] == EXPECTED_IMAGES[name]
    for use in workload.images:
        assert resolve(review.object, use.pointer) == use.image
    if name in EXPECTED_USED_BY:
        assert [use.used_by for use in workload.images] == EXPECTED_USED_BY[name]
    assert review.uid == document["request"]["uid"]
    assert review.group == document["request"]["kind"]["group"]


def test_each_kind_maps_to_where_it_keeps_its_pod_spec():
    def pod_specs(name: str) -> tuple[str, ...]:
        review = admission.parse_review(json.dumps(load(name)))
        return admission.find_images(review.group, review.kind, review.object).pod_specs

    assert pod_specs("pod.json") == ("/spec",)
    assert pod_specs("replicationcontroller.json") == ("/spec/template/spec",)
    assert pod_specs("podtemplate.json") == ("/template/spec",)
    for name in ("deployment.json", "replicaset.json", "statefulset.json", "daemonset.json"):
        assert pod_specs(name) == ("/spec/template/spec",)
    assert pod_specs("job.json") == ("/spec/template/spec",)
    assert pod_specs("cronjob.json") == ("/spec/jobTemplate/spec/template/spec",)
    assert pod_specs("rollout.json") == ("/spec/template/spec",)  # any kind, by its shape
    assert pod_specs("configmap.json") == ()


def test_a_custom_kind_with_a_job_template_is_read_there():
    document = load("cronjob.json")
    document["request"]["kind"] = {"group": "ops.example.com", "version": "v1", "kind": "Nightly"}
    review = admission.parse_review(json.dumps(document))
    workload = admission.find_images(review.group, review.kind, review.object)
    assert workload.pod_specs == ("/spec/jobTemplate/spec/template/spec",)
    assert [(u.pointer, u.image) for u in workload.images] == EXPECTED_IMAGES["cronjob.json"]


def test_the_group_comes_from_the_object_when_the_request_has_no_kind():
    document = load("rollout.json")
    del document["request"]["kind"]
    review = admission.parse_review(json.dumps(document))
    assert (review.group, review.kind) == ("argoproj.io", "Rollout")
    document = load("pod.json")
    del document["request"]["kind"]
    review = admission.parse_review(json.dumps(document))
    assert (review.group, review.kind) == ("", "Pod")


@pytest.mark.parametrize(
    ("group", "kind", "obj", "why"),
    [
        (
            "argoproj.io",
            "Workflow",
            load("workflow.json")["request"]["object"],
            "a Workflow (argoproj.io) whose images cannot be found: it is not a kind known to "
            "carry none, and it has no pod spec (an object with a containers list) at "
            "/spec/template/spec or /spec/jobTemplate/spec/template/spec",
        ),
        (
            "apps",
            "Deployment",
            {"spec": {"replicas": 1}},
            "a Deployment (apps) whose images cannot be found: it has no pod spec (an object "
            "with a containers list) at /spec/template/spec",
        ),
        (
            "",
            "PodTemplate",
            {"spec": {"template": load("podtemplate.json")["request"]["object"]["template"]}},
            "a PodTemplate whose images cannot be found: it has no pod spec (an object with a "
            "containers list) at /template/spec",
        ),
        # Not a pod spec: no containers list where a pod template would be.
        ("ops.example.com", "Thing", {"spec": {"template": {"spec": {"image": "x"}}}}, "Thing"),
        ("ops.example.com", "Thing", {"spec": {"template": {"spec": "x"}}}, "Thing"),
        # A built-in kind's name in another API group is not that kind.
        ("ops.example.com", "ConfigMap", {"data": {"image": "x"}}, "ConfigMap"),
        ("", "", {}, "an object of no kind whose images cannot be found"),
    ],
)
def test_an_object_whose_images_cannot_be_found_is_unrecognised(group, kind, obj, why):
    workload = admission.find_images(group, kind, obj)
    assert workload.images == ()
    assert workload.unrecognised is not None
    assert why in workload.unrecognised


def test_kinds_known_to_carry_no_image_have_none():
    for group, kind in [("", "ConfigMap"), ("policy", "Eviction"), ("autoscaling", "Scale")]:
        assert admission.find_images(group, kind, {"metadata": {}}) == admission.Workload()


def test_json_pointers_escape_and_pins_keep_the_name_as_written():
    assert admission.json_pointer("a/b", "c~d", 0) == "/a~1b/c~0d/0"
    digest = "sha256:" + "1" * 64
    assert admission.pinned_image("nginx:1.25", digest) == f"nginx@{digest}"
    assert admission.pinned_image("nginx", digest) == f"nginx@{digest}"
    assert admission.pinned_image("localhost:5000/app:2", digest) == f"localhost:5000/app@{digest}"
    assert admission.pinned_image("localhost:5000/app", digest) == f"localhost:5000/app@{digest}"
    assert admission.pinned_image(f"app:1@{digest}", digest) is None
    assert admission.pinned_image("Not Valid", digest) is None


EXEMPT_UPLOADER = (
    "exempt: rule exempt-repositories matches by image pattern "
    "registry.example.com/shop/uploader, and its mode is off"
)


def test_the_patch_replaces_each_container_of_a_pinned_image_and_only_those():
    review = admission.parse_review((FIXTURES / "cronjob.json").read_text())
    containers = admission.find_images(review.group, review.kind, review.object).images
    digest = "sha256:" + "2" * 64
    verdicts = {
        "registry.example.com/shop/report:5.0": admission.Verdict(
            "registry.example.com/shop/report:5.0",
            admission.PASSED,
            ("team ci: signed",),
            pin=f"registry.example.com/shop/report@{digest}",
        ),
        "registry.example.com/shop/uploader:1.2": admission.Verdict(
            "registry.example.com/shop/uploader:1.2",
            admission.PASSED,
            (EXEMPT_UPLOADER,),
            note=EXEMPT_UPLOADER,
        ),
    }
    decision = admission.decide(uses=containers, verdicts=verdicts, mutate=True)
    prefix = "/spec/jobTemplate/spec/template/spec"
    assert decision.patch == (
        {
            "op": "replace",
            "path": f"{prefix}/containers/0/image",
            "value": f"registry.example.com/shop/report@{digest}",
        },
        {
            "op": "replace",
            "path": f"{prefix}/initContainers/0/image",
            "value": f"registry.example.com/shop/report@{digest}",
        },
    )
    assert "allowed unchecked: exempt:" in decision.message
    answer = admission.response_json("u", decision)["response"]
    assert answer["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["patch"])) == list(decision.patch)
    validate = admission.decide(uses=containers, verdicts=verdicts, mutate=False)
    assert "patch" not in admission.response_json("u", validate)["response"]


def test_the_patch_pins_image_volumes_as_it_pins_containers():
    document = load("pod-image-volume.json")
    review = admission.parse_review(json.dumps(document))
    uses = admission.find_images(review.group, review.kind, review.object).images
    digest = "sha256:" + "3" * 64
    models = "registry.example.com/ml/models@sha256:" + "d" * 64
    signed = ("team ci: signed",)
    verdicts = {
        "registry.example.com/shop/web:1.4.2": admission.Verdict(
            "registry.example.com/shop/web:1.4.2",
            admission.PASSED,
            signed,
            pin=f"registry.example.com/shop/web@{digest}",
        ),
        "registry.example.com/shop/dataset:2024.06": admission.Verdict(
            "registry.example.com/shop/dataset:2024.06",
            admission.PASSED,
            signed,
            pin=f"registry.example.com/shop/dataset@{digest}",
        ),
        models: admission.Verdict(models, admission.PASSED, signed),  # a digest: nothing to pin
    }
    decision = admission.decide(uses=uses, verdicts=verdicts, mutate=True)
    assert decision.patch == (
        {
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": f"registry.example.com/shop/web@{digest}",
        },
        {
            "op": "replace",
            "path": "/spec/volumes/0/image/reference",
            "value": f"registry.example.com/shop/dataset@{digest}",
        },
    )
    assert decision.message == (
        "Gatehouse content trust: 3 images allowed; pinned 2 to the signed digest"
    )
    pinned = review.object
    for operation in decision.patch:
        *parents, last = operation["path"].lstrip("/").split("/")
        node = resolve(pinned, "/" + "/".join(parents))
        assert node[last] != operation["value"]
        node[last] = operation["value"]
    assert pinned["spec"]["volumes"][0]["image"] == {
        "reference": f"registry.example.com/shop/dataset@{digest}",
        "pullPolicy": "IfNotPresent",
    }
    assert pinned["spec"]["volumes"][2]["image"]["reference"] == models


# --- Answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_IMAGES))
@pytest.mark.parametrize("path", [VALIDATE, MUTATE])
def test_with_content_trust_disabled_every_kind_is_allowed_and_nothing_patched(
    review_client, name, path
):
    document = load(name)
    answer = review_client(path, document)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == document["request"]["uid"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert "patchType" not in response
    assert "warnings" not in response
    if EXPECTED_IMAGES[name]:
        assert "content trust is disabled" in response["status"]["message"]
    decision = AdmissionDecision.objects.get()
    assert (decision.uid, decision.kind, decision.allowed) == (
        document["request"]["uid"],
        document["request"]["kind"]["kind"],
        True,
    )
    assert decision.webhook == path.split("/")[-2]


def test_delete_is_allowed_at_once(review_client, enforced, notary_down):
    document = load("delete-deployment.json")
    response = review_client(VALIDATE, document)["response"]
    assert response["allowed"] is True
    assert response["uid"] == document["request"]["uid"]
    assert "DELETE is not checked" in response["status"]["message"]


def test_a_kind_without_images_is_allowed_at_once(review_client, enforced, notary_down):
    response = review_client(VALIDATE, load("configmap.json"))["response"]
    assert response["allowed"] is True
    assert "without container images" in response["status"]["message"]


def test_an_exempt_namespace_is_allowed_and_says_so(api, admin, review_client, enforced):
    response = review_client(MUTATE, load("kube-system-pod.json"))["response"]
    assert response["allowed"] is True
    assert "namespace kube-system is exempt" in response["status"]["message"]
    assert "patch" not in response

    body = api(admin).get("/api/v1/policy/content-trust/").json()
    assert body["exempt_namespaces"] == ["kube-system"]
    changed = api(admin).put(
        "/api/v1/policy/content-trust/",
        {**body, "exempt_namespaces": ["kube-system", "shop"]},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    # Exempt namespaces are the rule exempt-namespaces (mode off), changed in place.
    assert changed.json()["changed"] == ["exempt_namespaces"]
    assert PolicyVersion.objects.first().policy["rules"] == [
        {
            "name": "exempt-namespaces",
            "images": [],
            "namespaces": ["kube-system", "shop"],
            "mode": "off",
            "require": {"match": "all", "teams": []},
        }
    ]
    shop = review_client(VALIDATE, load("deployment.json"))["response"]
    assert shop["allowed"] is True
    assert "namespace shop is exempt" in shop["status"]["message"]


def test_exempt_namespaces_are_kept_when_omitted_and_checked_when_given(api, admin, enforced):
    policy = api(admin).get("/api/v1/policy/content-trust/").json()
    settings = {k: policy[k] for k in ("enabled", "mode", "signing_teams", "allow_repos")}
    api(admin).put(
        "/api/v1/policy/content-trust/",
        {**settings, "exempt_namespaces": ["tools"]},
        format="json",
    )
    again = api(admin).put(
        "/api/v1/policy/content-trust/", {**settings, "mode": "permissive"}, format="json"
    )
    assert again.json()["exempt_namespaces"] == ["tools"]
    assert again.json()["changed"] == ["mode"]
    bad = api(admin).put(
        "/api/v1/policy/content-trust/",
        {**settings, "exempt_namespaces": ["Kube_System"]},
        format="json",
    )
    assert bad.status_code == 400
    assert "exempt_namespaces" in bad.json()
    assert policy_settings(policy_get())["exempt_namespaces"] == ["tools"]


def test_repositories_in_allow_repos_are_allowed_and_say_so(admin, review_client, enforced):
    policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["registry.example.com/shop/*", "busybox"],
    )
    response = review_client(MUTATE, load("cronjob.json"))["response"]
    assert response["allowed"] is True
    message = response["status"]["message"]
    assert "[registry.example.com/shop/report:5.0] allowed unchecked: exempt: " in message
    assert (
        "rule exempt-repositories matches by image pattern registry.example.com/shop/*, and its "
        "mode is off" in message
    )
    assert "patch" not in response


def test_an_unreachable_notary_denies_in_enforced_mode_naming_each_image(
    admin, review_client, enforced, notary_down
):
    policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["busybox"],
    )
    document = load("deployment.json")
    response = review_client(VALIDATE, document)["response"]
    assert response["uid"] == document["request"]["uid"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert message.startswith("Gatehouse content trust (enforced) denied 3 of 4 images: ")
    for image in (
        "registry.example.com/shop/checkout:2.0",
        "registry.example.com/shop/metrics-agent:0.9",
        "registry.example.com/mesh/envoy:1.29@sha256:" + "e" * 64,
    ):
        assert f"[{image}] Notary cannot be reached, so nothing is verified" in message
    assert "[busybox:1.36]" not in message  # exempt by allow_repos
    decision = admission_decisions_latest().get()
    assert decision.allowed is False
    assert [f["image"] for f in decision.failing] == [
        "registry.example.com/shop/checkout:2.0",
        "registry.example.com/shop/metrics-agent:0.9",
        "registry.example.com/mesh/envoy:1.29@sha256:" + "e" * 64,
    ]
    assert (decision.namespace, decision.kind, decision.name, decision.operation) == (
        "shop",
        "Deployment",
        "checkout",
        "CREATE",
    )
    assert decision.message == message


def test_permissive_mode_allows_with_one_warning_per_failing_image(
    admin, review_client, enforced, notary_down
):
    policy_update(
        actor=admin,
        enabled=True,
        mode="permissive",
        signing_team_names=["ci"],
        allow_repos=["busybox"],
    )
    document = load("statefulset.json")
    response = review_client(MUTATE, document)["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert len(response["warnings"]) == 2
    for warning, image in zip(
        response["warnings"],
        [
            "registry.example.com/data/postgres:16.3",
            "registry.example.com/data/postgres-exporter:0.15",
        ],
        strict=True,
    ):
        assert warning.startswith(f"Gatehouse content trust (permissive) would deny [{image}] ")
        assert "Notary cannot be reached" in warning
    assert "2 of 3 images would be denied" in response["status"]["message"]
    assert (
        "[busybox:1.36] allowed unchecked: exempt: rule exempt-repositories matches by image "
        "pattern docker.io/library/busybox, and its mode is off"
    ) in response["status"]["message"]


def test_an_invalid_image_reference_fails_closed(review_client, enforced):
    document = load("job.json")
    document["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "Registry.Example.com/Shop/Search:3.1"
    )
    response = review_client(VALIDATE, document)["response"]
    assert response["allowed"] is False
    assert "is not a valid image reference" in response["status"]["message"]


def test_a_dry_run_is_answered_but_not_recorded(review_client):
    document = load("pod.json")
    document["request"]["dryRun"] = True
    assert review_client(VALIDATE, document)["response"]["allowed"] is True
    assert not AdmissionDecision.objects.exists()


def test_the_latest_decisions_come_newest_first(review_client):
    for name in ("pod.json", "job.json", "cronjob.json"):
        review_client(VALIDATE, load(name))
    latest = list(admission_decisions_latest(limit=2))
    assert [d.kind for d in latest] == ["CronJob", "Job"]


def _without(document: dict, *path: str) -> dict:
    node = document
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return document


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ({**load("pod.json"), "apiVersion": "admission.k8s.io/v1beta1"}, "Expected apiVersion"),
        ({**load("pod.json"), "kind": "Pod"}, "Expected apiVersion"),
        (_without(load("pod.json"), "request"), "no request object"),
        (_without(load("pod.json"), "request", "uid"), "request.uid is missing"),
        ({**load("pod.json"), "request": {**load("pod.json")["request"], "uid": ""}}, "uid"),
        (
            {**load("pod.json"), "request": {**load("pod.json")["request"], "object": [1]}},
            "request.object must be an object",
        ),
        (
            {**load("pod.json"), "request": {**load("pod.json")["request"], "object": "x"}},
            "request.object must be an object",
        ),
    ],
)
def test_a_malformed_review_is_a_400_saying_why(review_client, body, why):
    answer = review_client(VALIDATE, body, status=400)
    assert why in answer["detail"]
    assert not AdmissionDecision.objects.exists()


def test_a_malformed_pod_spec_is_a_400(review_client):
    document = load("deployment.json")
    document["request"]["object"]["spec"]["template"]["spec"]["containers"] = {"api": {}}
    answer = review_client(MUTATE, document, status=400)
    assert "/spec/template/spec/containers must be a list" in answer["detail"]


# --- Image volumes, every kind with a pod template, and failing closed -------------------


@pytest.mark.parametrize("path", [VALIDATE, MUTATE])
def test_an_unsigned_image_volume_denies_the_pod_naming_the_volume(
    admin, review_client, enforced, notary_down, path
):
    policy_update(  # the container passes unchecked: only the image volumes are evaluated
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["registry.example.com/shop/web"],
    )
    document = load("pod-image-volume.json")
    response = review_client(path, document)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "patch" not in response
    message = response["status"]["message"]
    assert message.startswith("Gatehouse content trust (enforced) denied 2 of 3 images: ")
    dataset, models = (
        "registry.example.com/shop/dataset:2024.06",
        "registry.example.com/ml/models@sha256:" + "d" * 64,
    )
    body = message.removeprefix("Gatehouse content trust (enforced) denied 2 of 3 images: ")
    for part, (image, volume) in zip(
        body.split(" | "), [(dataset, "data"), (models, "models")], strict=True
    ):
        assert part.startswith(f"[{image}] Notary cannot be reached, so nothing is verified: ")
        assert part.endswith(f" (used by volume {volume})")
    assert "registry.example.com/shop/web" not in message
    decision = admission_decisions_latest().get()
    assert decision.allowed is False
    assert [f["image"] for f in decision.failing] == [dataset, models]


def test_permissive_mode_warns_about_an_image_volume_naming_it(
    admin, review_client, enforced, notary_down
):
    policy_update(
        actor=admin,
        enabled=True,
        mode="permissive",
        signing_team_names=["ci"],
        allow_repos=["registry.example.com/shop/web", "registry.example.com/ml/*"],
    )
    response = review_client(MUTATE, load("pod-image-volume.json"))["response"]
    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert warning.startswith(
        "Gatehouse content trust (permissive) would deny "
        "[registry.example.com/shop/dataset:2024.06] "
    )
    assert warning.endswith("(used by volume data)")
    assert "patch" not in response


@pytest.mark.parametrize(
    "name",
    ["replicationcontroller.json", "podtemplate.json", "rollout.json", "pod-image-volume.json"],
)
@pytest.mark.parametrize("path", [VALIDATE, MUTATE])
def test_every_kind_with_a_pod_template_is_evaluated(
    review_client, enforced, notary_down, name, path
):
    document = load(name)
    response = review_client(path, document)["response"]
    assert response["allowed"] is False
    images = list(dict.fromkeys(image for _, image in EXPECTED_IMAGES[name]))
    count = f"{len(images)} of {len(images)} image{'s' if len(images) > 1 else ''}"
    message = response["status"]["message"]
    assert message.startswith(f"Gatehouse content trust (enforced) denied {count}: ")
    for image in images:
        assert f"[{image}] Notary cannot be reached" in message
    decision = admission_decisions_latest().get()
    assert (decision.kind, decision.allowed) == (document["request"]["kind"]["kind"], False)
    assert [f["image"] for f in decision.failing] == images


def test_a_custom_kind_with_a_job_template_is_evaluated(review_client, enforced, notary_down):
    document = load("cronjob.json")
    document["request"]["kind"] = {"group": "ops.example.com", "version": "v1", "kind": "Nightly"}
    document["request"]["object"]["apiVersion"] = "ops.example.com/v1"
    document["request"]["object"]["kind"] = "Nightly"
    response = review_client(VALIDATE, document)["response"]
    assert response["allowed"] is False
    assert "denied 2 of 2 images" in response["status"]["message"]
    assert "(used by container report, initContainer fetch)" in (response["status"]["message"])


@pytest.mark.parametrize("path", [VALIDATE, MUTATE])
def test_a_kind_whose_images_cannot_be_found_is_denied_when_enforced(review_client, enforced, path):
    document = load("workflow.json")
    response = review_client(path, document)["response"]
    assert response["uid"] == document["request"]["uid"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "patch" not in response
    assert response["status"]["message"] == (
        "Gatehouse content trust (enforced) denied a Workflow (argoproj.io) whose images "
        "cannot be found: it is not a kind known to carry none, and it has no pod spec (an "
        "object with a containers list) at /spec/template/spec or "
        "/spec/jobTemplate/spec/template/spec; failing closed"
    )
    decision = admission_decisions_latest().get()
    assert (decision.kind, decision.name, decision.allowed) == ("Workflow", "nightly-report", False)
    assert decision.message == response["status"]["message"]


def test_a_workload_without_its_pod_template_is_denied_when_enforced(review_client, enforced):
    document = load("deployment.json")
    del document["request"]["object"]["spec"]["template"]
    response = review_client(MUTATE, document)["response"]
    assert response["allowed"] is False
    assert (
        "a Deployment (apps) whose images cannot be found: it has no pod spec"
        in (response["status"]["message"])
    )


def test_a_kind_whose_images_cannot_be_found_follows_the_mode(admin, review_client, enforced):
    policy_update(
        actor=admin, enabled=True, mode="permissive", signing_team_names=["ci"], allow_repos=[]
    )
    response = review_client(VALIDATE, load("workflow.json"))["response"]
    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert warning.startswith(
        "Gatehouse content trust (permissive) would deny a Workflow (argoproj.io) whose "
        "images cannot be found: "
    )
    assert response["status"]["message"] == warning

    policy_update(
        actor=admin, enabled=False, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    response = review_client(MUTATE, load("workflow.json"))["response"]
    assert response["allowed"] is True
    assert "warnings" not in response
    assert response["status"]["message"].endswith("; allowed: content trust is disabled")

    policy_update(
        actor=admin, enabled=True, mode="enforced", signing_team_names=["ci"], allow_repos=[]
    )
    exempt = load("workflow.json")
    exempt["request"]["namespace"] = "kube-system"
    response = review_client(VALIDATE, exempt)["response"]
    assert response["allowed"] is True
    assert "namespace kube-system is exempt" in response["status"]["message"]

    # The object's own namespace is its author's word: it earns no exemption.
    claimed = load("workflow.json")
    claimed["request"].pop("namespace", None)
    claimed["request"]["object"]["metadata"]["namespace"] = "kube-system"
    response = review_client(VALIDATE, claimed)["response"]
    assert response["allowed"] is False
    assert "exempt" not in response["status"]["message"]


@pytest.mark.parametrize(
    ("group", "version", "kind", "operation"),
    [
        ("", "v1", "ConfigMap", "CREATE"),
        ("policy", "v1", "Eviction", "CREATE"),
        ("autoscaling", "v1", "Scale", "UPDATE"),
        ("argoproj.io", "v1alpha1", "Workflow", "DELETE"),
        ("argoproj.io", "v1alpha1", "Workflow", "CONNECT"),
    ],
)
def test_what_legitimately_carries_no_image_is_still_allowed(
    review_client, enforced, notary_down, group, version, kind, operation
):
    document = load("configmap.json")
    document["request"]["kind"] = {"group": group, "version": version, "kind": kind}
    document["request"]["operation"] = operation
    response = review_client(VALIDATE, document)["response"]
    assert response["allowed"] is True
    assert "warnings" not in response


def test_the_evaluate_api_and_admission_agree_on_an_image_volume(
    api, admin, review_client, enforced
):
    policy_update(
        actor=admin,
        enabled=True,
        mode="enforced",
        signing_team_names=["ci"],
        allow_repos=["registry.example.com/shop/*", "registry.example.com/ml/*"],
    )
    dataset = "registry.example.com/shop/dataset:2024.06"
    explained = api(admin).post("/api/v1/policy/evaluate/", {"image": dataset}, format="json")
    assert explained.status_code == 200, explained.content
    assert explained.json()["decision"] == "allowed"
    (reason,) = explained.json()["reasons"]
    response = review_client(VALIDATE, load("pod-image-volume.json"))["response"]
    assert response["allowed"] is True
    assert f"[{dataset}] allowed unchecked: {reason}" in response["status"]["message"]

    # A reference the evaluate API refuses is denied by admission in the same words.
    bad = "Registry.Example.com/Shop/Dataset:2024.06"
    refused = api(admin).post("/api/v1/policy/evaluate/", {"image": bad}, format="json")
    assert refused.status_code == 400
    (why,) = refused.json()["image"]
    document = load("pod-image-volume.json")
    document["request"]["object"]["spec"]["volumes"][0]["image"]["reference"] = bad
    response = review_client(MUTATE, document)["response"]
    assert response["allowed"] is False
    assert f"[{bad}] {why} (used by volume data)" in response["status"]["message"]


# --- Who may ask -------------------------------------------------------------------------


def test_no_token_is_a_401_and_a_user_without_the_permission_a_403(api, admin, alice):
    document = load("pod.json")
    assert api().post(VALIDATE, document, format="json").status_code == 401
    assert api().post(MUTATE, document, format="json").status_code == 401
    denied = api(alice).post(VALIDATE, document, format="json")
    assert denied.status_code == 403
    assert "policy.review_admission" in denied.json()["detail"]
    assert api(admin).post(VALIDATE, document, format="json").status_code == 200


def test_a_permission_taken_away_refuses_the_very_next_review(api, alice):
    permission = Permission.objects.get(codename="review_admission")
    reviewers = Group.objects.create(name="reviewers")
    client = api(alice)
    document = load("pod.json")

    def status() -> int:
        return client.post(VALIDATE, document, format="json").status_code

    alice.user_permissions.add(permission)
    assert [status(), status()] == [200, 200]
    alice.user_permissions.remove(permission)
    assert status() == 403

    reviewers.permissions.add(permission)
    alice.groups.add(reviewers)
    assert status() == 200
    reviewers.permissions.remove(permission)  # the group keeps its member
    assert status() == 403
    assert AdmissionDecision.objects.count() == 3


@pytest.mark.parametrize(
    ("is_admin", "is_active", "own", "by_group", "other_permission"),
    [
        (False, True, False, False, False),
        (False, True, True, False, False),
        (False, True, False, True, False),
        (False, True, False, False, True),  # another permission is not this one
        (False, False, True, True, False),  # deactivated: nothing
        (True, True, False, False, False),  # admins have every permission
        (True, False, False, False, False),
    ],
)
def test_the_review_permission_is_django_s(is_admin, is_active, own, by_group, other_permission):
    user = make_user("bob", is_admin=is_admin)
    permission = Permission.objects.get(codename="review_admission")
    if own:
        user.user_permissions.add(permission)
    if by_group:
        group = Group.objects.create(name="reviewers")
        group.permissions.add(permission)
        user.groups.add(group)
    if other_permission:
        user.user_permissions.add(Permission.objects.get(codename="add_user"))
    user.is_active = is_active
    user.save()
    user = type(user).objects.get(pk=user.pk)  # no permission Django's backend cached

    assert may_review_admission(user) is user.has_perm("policy.review_admission")


def test_a_review_is_four_statements_whatever_its_images(review_client, django_assert_num_queries):
    """Its token, the permission, the generation of the evaluations' inputs and the decision:
    nothing is read again per image (the policy is off, so no trust data is read)."""
    review_client(VALIDATE, load("pod.json"))  # reads the policy and identities once
    for name in ("pod.json", "deployment.json"):
        with django_assert_num_queries(4):
            review_client(VALIDATE, load(name))


def test_the_decision_log_reads_three_statements_whatever_its_length(
    api, admin, review_client, django_assert_max_num_queries
):
    client = api(admin)
    for count in (1, 2, 3):
        review_client(MUTATE, load("deployment.json"))
        with django_assert_max_num_queries(3):  # the token, the count, the page
            page = client.get("/api/v1/admission/decisions/").json()
        assert page["count"] == count
    assert page["results"][0]["pinned"] == 0
    assert "images" not in page["results"][0]


def test_the_service_account_command_prints_one_working_long_lived_token(api):
    out, err = io.StringIO(), io.StringIO()
    call_command("admission_service_account", "k8s", "--days", "30", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert len(out.getvalue().splitlines()) == 1
    assert "Created service account 'k8s'" in err.getvalue()

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    answer = client.post(VALIDATE, load("pod.json"), format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["response"]["allowed"] is True
    # It may review admissions and nothing an admin may do.
    assert (
        client.get(CONFIGURATION, {"mode": "validate", "url": "https://g.example"}).status_code
        == 403
    )

    (issued,) = ApiToken.objects.filter(user__username="k8s")
    lifetime = issued.expires_at - timezone.now()
    assert dt.timedelta(days=29, hours=23) < lifetime <= dt.timedelta(days=30)
    assert not issued.user.has_usable_password()

    again = io.StringIO()
    call_command("admission_service_account", "k8s", stdout=again, stderr=io.StringIO())
    assert again.getvalue().strip() != token
    tokens = ApiToken.objects.filter(user__username="k8s", revoked_at__isnull=True)
    assert tokens.count() == 2
    newest = tokens.latest("created_at")
    assert newest.expires_at - timezone.now() > dt.timedelta(days=364)

    call_command(
        "admission_service_account",
        "k8s",
        "--revoke-others",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert ApiToken.objects.filter(user__username="k8s", revoked_at__isnull=True).count() == 1


def test_the_service_account_command_never_takes_over_a_person(alice):
    with pytest.raises(CommandError, match="not a service account"):
        call_command("admission_service_account", "alice", stdout=io.StringIO())
    with pytest.raises(CommandError, match="1 to 3650 days"):
        call_command("admission_service_account", "k8s", "--days", "0", stdout=io.StringIO())


# --- The webhook configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("validate", "ValidatingWebhookConfiguration"), ("mutate", "MutatingWebhookConfiguration")],
)
def test_the_webhook_configuration_is_ready_to_apply(api, admin, settings, tmp_path, mode, kind):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings.GATEHOUSE_TLS_CA_FILE = str(ca)
    response = api(admin).get(
        CONFIGURATION, {"mode": mode, "url": "https://gatehouse.example.com/"}
    )
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/yaml"
    document = yaml.safe_load(response.content)
    assert document["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert document["kind"] == kind
    (webhook,) = document["webhooks"]
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "None"
    assert webhook["clientConfig"] == {
        "url": f"https://gatehouse.example.com/api/v1/admission/{mode}/",
        "caBundle": base64.b64encode(ca.read_bytes()).decode(),
    }
    assert webhook["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
        ]
    }
    registered = {
        (group, version, resource)
        for rule in webhook["rules"]
        for group in rule["apiGroups"]
        for version in rule["apiVersions"]
        for resource in rule["resources"]
    }
    assert registered == {
        ("", "v1", "pods"),
        ("", "v1", "pods/ephemeralcontainers"),
        ("", "v1", "replicationcontrollers"),
        ("", "v1", "podtemplates"),
        ("apps", "v1", "deployments"),
        ("apps", "v1", "replicasets"),
        ("apps", "v1", "statefulsets"),
        ("apps", "v1", "daemonsets"),
        ("batch", "v1", "jobs"),
        ("batch", "v1", "cronjobs"),
    }
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in webhook["rules"])
    assert all(rule["scope"] == "Namespaced" for rule in webhook["rules"])
    assert ("reinvocationPolicy" in webhook) == (mode == "mutate")


def test_a_changed_ca_file_shows_in_the_next_configuration(api, admin, settings, tmp_path):
    """The YAML is kept per process for its arguments, the CA file's bytes among them."""
    ca = tmp_path / "ca.pem"
    settings.GATEHOUSE_TLS_CA_FILE = str(ca)
    client = api(admin)
    query = {"mode": "validate", "url": "https://gatehouse.example.com"}

    def ca_bundle() -> str:
        (webhook,) = yaml.safe_load(client.get(CONFIGURATION, query).content)["webhooks"]
        return webhook["clientConfig"]["caBundle"]

    for pem in (b"first\n", b"second\n", b"first\n"):
        ca.write_bytes(pem)
        assert [ca_bundle(), ca_bundle()] == [base64.b64encode(pem).decode()] * 2


def test_the_configuration_registers_every_kind_admission_reads_a_pod_spec_of():
    """Each kind of POD_SPEC_PATHS is registered under its group, so none goes unchecked."""
    plural = {
        "Pod": "pods",
        "ReplicationController": "replicationcontrollers",
        "PodTemplate": "podtemplates",
        "Deployment": "deployments",
        "ReplicaSet": "replicasets",
        "StatefulSet": "statefulsets",
        "DaemonSet": "daemonsets",
        "Job": "jobs",
        "CronJob": "cronjobs",
    }
    registered = {
        (group, resource)
        for group, _, resources in admission.WORKLOAD_RESOURCES
        for resource in resources
    }
    assert set(plural) == {kind for _, kind in admission.POD_SPEC_PATHS}
    for group, kind in admission.POD_SPEC_PATHS:
        assert (group, plural[kind]) in registered


def test_a_custom_kind_is_registered_when_asked_for(api, admin):
    response = api(admin).get(
        CONFIGURATION
        + "?mode=mutate&url=https://gatehouse.example.com"
        + "&resource=argoproj.io/v1alpha1/rollouts&resource=ops.example.com/v1/nightlies"
        + "&resource=argoproj.io/v1alpha1/rollouts"
    )
    assert response.status_code == 200, response.content
    (webhook,) = yaml.safe_load(response.content)["webhooks"]
    custom = [rule for rule in webhook["rules"] if rule["scope"] == "*"]
    assert custom == [
        {
            "apiGroups": ["argoproj.io"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["rollouts"],
            "scope": "*",
        },
        {
            "apiGroups": ["ops.example.com"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["nightlies"],
            "scope": "*",
        },
    ]
    assert len(webhook["rules"]) == len(admission.WORKLOAD_RESOURCES) + 2


@pytest.mark.parametrize(
    "resource",
    [
        "rollouts",
        "argoproj.io/rollouts",
        "apps/v1/deployments",  # a built-in group: registered already, or no pod template
        "argoproj.io/v1alpha1/rollouts/status",
        "argoproj.io/V1/rollouts",
        "Argoproj.io/v1alpha1/rollouts",
        "argoproj.io/v1alpha1/*",
        "argoproj.io/v1alpha1/",
    ],
)
def test_a_custom_resource_not_understood_is_a_400(api, admin, resource):
    response = api(admin).get(
        CONFIGURATION,
        {"mode": "validate", "url": "https://g.example.com", "resource": resource},
    )
    assert response.status_code == 400
    assert "is not <API group>/<version>/<resource>" in response.json()["resource"][0]


def test_without_a_ca_file_the_configuration_has_no_ca_bundle(api, admin, settings):
    settings.GATEHOUSE_TLS_CA_FILE = ""
    response = api(admin).get(
        CONFIGURATION, {"mode": "validate", "url": "https://gatehouse.example.com/prefix"}
    )
    (webhook,) = yaml.safe_load(response.content)["webhooks"]
    assert webhook["clientConfig"] == {
        "url": "https://gatehouse.example.com/prefix/api/v1/admission/validate/"
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"mode": "audit", "url": "https://g.example.com"}, "mode"),
        ({"url": "https://g.example.com"}, "mode"),
        ({"mode": "validate", "url": "http://g.example.com"}, "url"),
        ({"mode": "validate", "url": "not a url"}, "url"),
        ({"mode": "validate", "url": "https://g.example.com/?x=1"}, "url"),
        ({"mode": "validate"}, "url"),
    ],
)
def test_a_bad_mode_or_url_is_a_400(api, admin, query, field):
    response = api(admin).get(CONFIGURATION, query)
    assert response.status_code == 400
    assert field in response.json()


def test_only_admins_get_the_configuration(api, alice):
    query = {"mode": "validate", "url": "https://g.example.com"}
    assert api().get(CONFIGURATION, query).status_code == 401
    assert api(alice).get(CONFIGURATION, query).status_code == 403


def test_a_user_made_by_the_factory_has_no_review_permission(db):
    assert not make_user("bob").has_perm("policy.review_admission")
