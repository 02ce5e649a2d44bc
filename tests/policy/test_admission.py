"""The Kubernetes admission webhook without Notary: recorded ``AdmissionReview`` documents of
every workload kind, answered with real evaluations (policy disabled, exempt, or Notary out
of reach), authentication, the service account and the webhook configuration."""

import base64
import datetime as dt
import io
import json
import socket
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiToken
from policy import admission
from policy.evaluation import PolicyRules
from policy.models import AdmissionDecision, PolicyVersion
from policy.selectors import admission_decisions_latest, policy_get
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
    "configmap.json": [],
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
    found = admission.container_images(review.kind, review.object)
    assert [(c.pointer, c.image) for c in found] == EXPECTED_IMAGES[name]
    for container in found:
        assert resolve(review.object, container.pointer) == container.image
    assert review.uid == document["request"]["uid"]


def test_json_pointers_escape_and_pins_keep_the_name_as_written():
    assert admission.json_pointer("a/b", "c~d", 0) == "/a~1b/c~0d/0"
    digest = "sha256:" + "1" * 64
    assert admission.pinned_image("nginx:1.25", digest) == f"nginx@{digest}"
    assert admission.pinned_image("nginx", digest) == f"nginx@{digest}"
    assert admission.pinned_image("localhost:5000/app:2", digest) == f"localhost:5000/app@{digest}"
    assert admission.pinned_image("localhost:5000/app", digest) == f"localhost:5000/app@{digest}"
    assert admission.pinned_image(f"app:1@{digest}", digest) is None
    assert admission.pinned_image("Not Valid", digest) is None


def test_the_patch_replaces_each_container_of_a_pinned_image_and_only_those():
    rules = PolicyRules(enabled=True, mode="enforced", signing_teams=("ci",), allow_repos=())
    review = admission.parse_review((FIXTURES / "cronjob.json").read_text())
    containers = admission.container_images(review.kind, review.object)
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
            ("exempt: registry.example.com/shop/uploader is in allow_repos",),
            note="exempt: registry.example.com/shop/uploader is in allow_repos",
        ),
    }
    decision = admission.decide(rules=rules, containers=containers, verdicts=verdicts, mutate=True)
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
    validate = admission.decide(rules=rules, containers=containers, verdicts=verdicts, mutate=False)
    assert "patch" not in admission.response_json("u", validate)["response"]


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
    assert changed.json()["changed"] == ["exempt_namespaces"]
    assert PolicyVersion.objects.first().policy["exempt_namespaces"] == ["kube-system", "shop"]
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
    assert policy_get().exempt_namespaces == ["tools"]


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
    assert "registry.example.com/shop/* is in allow_repos" in message
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
        "[busybox:1.36] allowed unchecked: exempt: busybox is in allow_repos"
        in (response["status"]["message"])
    )


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


# --- Who may ask -------------------------------------------------------------------------


def test_no_token_is_a_401_and_a_user_without_the_permission_a_403(api, admin, alice):
    document = load("pod.json")
    assert api().post(VALIDATE, document, format="json").status_code == 401
    assert api().post(MUTATE, document, format="json").status_code == 401
    denied = api(alice).post(VALIDATE, document, format="json")
    assert denied.status_code == 403
    assert "policy.review_admission" in denied.json()["detail"]
    assert api(admin).post(VALIDATE, document, format="json").status_code == 200


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
    resources = {resource for rule in webhook["rules"] for resource in rule["resources"]}
    assert resources == {
        "pods",
        "pods/ephemeralcontainers",
        "deployments",
        "replicasets",
        "statefulsets",
        "daemonsets",
        "jobs",
        "cronjobs",
    }
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in webhook["rules"])
    assert ("reinvocationPolicy" in webhook) == (mode == "mutate")


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
