"""Kubernetes admission reviews: read an ``AdmissionReview``, find every image the object's
pod specs run or mount, and compose the answer from the content-trust evaluations.

Pure functions over plain data and ``policy.evaluation`` results, with no I/O and no Django:
``policy.services.admission_review`` reads the policy, evaluates the images and records the
decision. The wire format is ``admission.k8s.io/v1`` (Kubernetes' "Dynamic Admission
Control"): the answer echoes ``request.uid``; a denial carries ``status.code`` 403 and a
message; ``warnings`` reach the user's ``kubectl``; a mutation is a base64 RFC 6902 JSON Patch.
"""

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from gatehouse import jsonbody
from policy.evaluation import (
    ALLOWED,
    DENIED,
    DISABLED_REASON,
    Evaluation,
    InvalidReference,
    parse_image_reference,
)
from policy.rules import ENFORCED, OFF
from trust.notary.references import image_text

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})

_TEMPLATE = ("spec", "template", "spec")
_JOB_TEMPLATE = ("spec", "jobTemplate", "spec", "template", "spec")

# Where each built-in kind with a pod spec keeps it, by (API group, kind).
POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("", "ReplicationController"): _TEMPLATE,
    ("", "PodTemplate"): ("template", "spec"),  # the template is at the top, not under spec
    ("apps", "Deployment"): _TEMPLATE,
    ("apps", "ReplicaSet"): _TEMPLATE,
    ("apps", "StatefulSet"): _TEMPLATE,
    ("apps", "DaemonSet"): _TEMPLATE,
    ("batch", "Job"): _TEMPLATE,
    ("batch", "CronJob"): _JOB_TEMPLATE,
}
# Any other kind (a custom resource such as an Argo Rollout): a pod template where the
# built-in workload controllers keep theirs.
TEMPLATE_POD_SPEC_PATHS: tuple[tuple[str, ...], ...] = (_TEMPLATE, _JOB_TEMPLATE)
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
# Singular, as a denial names where an image is used: "initContainer migrate".
_USED_BY = {
    "containers": "container",
    "initContainers": "initContainer",
    "ephemeralContainers": "ephemeralContainer",
}

# Built-in kinds known to carry no image: allowed at once should the webhook be sent them
# (a broader registration than Gatehouse generates, the pods/eviction and pods/binding
# subresources, the scale of a workload). Any other kind without a pod spec fails closed.
IMAGELESS_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Binding"),
        ("", "ConfigMap"),
        ("", "Endpoints"),
        ("", "Event"),
        ("", "LimitRange"),
        ("", "Namespace"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "ResourceQuota"),
        ("", "Secret"),
        ("", "Service"),
        ("", "ServiceAccount"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("autoscaling", "Scale"),
        ("coordination.k8s.io", "Lease"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("events.k8s.io", "Event"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("policy", "Eviction"),
        ("policy", "PodDisruptionBudget"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "StorageClass"),
    }
)

# What the webhook configuration registers: (API group, version, resources), one for each
# kind of POD_SPEC_PATHS (and the subresource `kubectl debug` adds ephemeral containers by).
WORKLOAD_RESOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "",
        "v1",
        ("pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"),
    ),
    ("apps", "v1", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", "v1", ("jobs", "cronjobs")),
)


class MalformedReview(ValueError):
    """The body is not an ``admission.k8s.io/v1`` AdmissionReview we can answer."""


@dataclass(frozen=True, slots=True)
class Review:
    """The parts of ``request`` that admission reads."""

    uid: str
    kind: str
    namespace: str
    name: str
    operation: str
    object: dict[str, Any] | None
    dry_run: bool
    group: str = ""  # the kind's API group, "" for the core group


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One image a pod spec runs or mounts: a container's ``image`` or an image volume's
    ``image.reference``, what uses it (``container web``, ``volume data``) and the JSON
    pointer to it within the object."""

    pointer: str
    used_by: str
    image: str


@dataclass(frozen=True, slots=True)
class Workload:
    """What admission finds in an object: the JSON pointers of the pod specs it read and
    their images. ``unrecognised`` says why the images cannot be found (the object is not
    of a kind known to carry none and has no pod spec where its kind keeps one): that
    object fails closed."""

    pod_specs: tuple[str, ...] = ()
    images: tuple[ImageUse, ...] = ()
    unrecognised: str | None = None


def parse_review(body: bytes | str) -> Review:
    """The review in ``body``, or ``MalformedReview`` saying what is wrong with it.

    Parsed as every API body is (``gatehouse.jsonbody``): UTF-8, nested at most
    ``jsonbody.MAX_DEPTH`` deep (a real review nests about 20 deep, ``managedFields``
    included), no lone surrogates; and no NUL in any string, as names, images and messages
    taken from the review are recorded (PostgreSQL stores no NUL) and no field checks them.
    """
    try:
        document = jsonbody.loads(body, allow_nul=False)
    except jsonbody.JSONBodyError as error:
        raise MalformedReview(f"The body is not JSON this webhook accepts: {error}") from error
    if not isinstance(document, dict):
        raise MalformedReview("The body must be a JSON object (an AdmissionReview).")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise MalformedReview(
            f"Expected apiVersion {API_VERSION!r} and kind {KIND!r}, not "
            f"{document.get('apiVersion')!r} and {document.get('kind')!r}; register the "
            'webhook with admissionReviewVersions: ["v1"].'
        )
    request = document.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("The AdmissionReview has no request object.")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid is missing: it must be a non-empty string.")
    operation = request.get("operation")
    if not isinstance(operation, str) or not operation:
        raise MalformedReview("request.operation is missing.")
    obj = request.get("object")
    if operation in CHECKED_OPERATIONS and not isinstance(obj, dict):
        raise MalformedReview(f"request.object must be an object for a {operation}.")
    if not isinstance(obj, dict):
        obj = None
    metadata = obj.get("metadata") if obj is not None else None
    metadata = metadata if isinstance(metadata, dict) else {}
    gvk = request.get("kind")
    kind = gvk.get("kind") if isinstance(gvk, dict) else None
    group = gvk.get("group") if isinstance(gvk, dict) else None
    if not isinstance(kind, str) or not kind:
        kind = obj.get("kind") if obj is not None else None
        api_version = _text(obj.get("apiVersion")) if obj is not None else ""
        group = api_version.rpartition("/")[0]  # "apps/v1" → "apps", "v1" → ""
    return Review(
        uid=uid,
        group=_text(group),
        kind=kind if isinstance(kind, str) else "",
        # The API server's word only: an object's own metadata.namespace is what its author
        # wrote (a cluster-scoped object may carry any), so it must never earn an exemption.
        namespace=_text(request.get("namespace")),
        name=(
            _text(request.get("name"))
            or _text(metadata.get("name"))
            or _text(metadata.get("generateName"))
        ),
        operation=operation,
        object=obj,
        dry_run=request.get("dryRun") is True,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def json_pointer(*parts: str | int) -> str:
    """An RFC 6901 pointer: ``~`` and ``/`` in a key are escaped."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _at(obj: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
        if node is None:
            return None
    return node


def _subject(group: str, kind: str) -> str:
    what = f"a {kind}" if kind else "an object of no kind"
    return f"{what} ({group})" if group else what


def find_images(group: str, kind: str, obj: Mapping[str, Any] | None) -> Workload:
    """Every image of the object's pod specs, with its pointer, in the order of the spec:
    ``containers``, ``initContainers``, ``ephemeralContainers``, then image volumes.

    A kind of ``POD_SPEC_PATHS`` is read where it keeps its pod spec. Any other kind (a
    custom resource) is read at each of ``TEMPLATE_POD_SPEC_PATHS`` that holds a pod spec,
    an object with a ``containers`` list. Failing that, a kind of ``IMAGELESS_KINDS`` has no
    image, and any other object is ``unrecognised``: nothing says where its images are, so
    it must not pass unchecked. A container or image volume without an image is skipped
    (the API server rejects it in validation); within a pod spec, a structure of the wrong
    type is malformed.
    """
    known = POD_SPEC_PATHS.get((group, kind))
    if known is not None:
        spec = _at(obj, known)
        if spec is not None and not isinstance(spec, Mapping):
            raise MalformedReview(f"{json_pointer(*known)} of a {kind} must be an object.")
        if spec is None or spec.get("containers") is None:
            return Workload(
                unrecognised=(
                    f"{_subject(group, kind)} whose images cannot be found: it has no pod "
                    f"spec (an object with a containers list) at {json_pointer(*known)}"
                )
            )
        paths: tuple[tuple[str, ...], ...] = (known,)
    else:
        paths = tuple(
            path
            for path in TEMPLATE_POD_SPEC_PATHS
            if isinstance(spec := _at(obj, path), Mapping)
            and isinstance(spec.get("containers"), list)
        )
        if not paths:
            if (group, kind) in IMAGELESS_KINDS:
                return Workload()
            where = " or ".join(json_pointer(*path) for path in TEMPLATE_POD_SPEC_PATHS)
            return Workload(
                unrecognised=(
                    f"{_subject(group, kind)} whose images cannot be found: it is not a kind "
                    "known to carry none, and it has no pod spec (an object with a "
                    f"containers list) at {where}"
                )
            )
    images = [use for path in paths for use in _pod_spec_images(_at(obj, path), path)]
    return Workload(pod_specs=tuple(json_pointer(*path) for path in paths), images=tuple(images))


def _used_by(label: str, name: object, list_field: str, index: int) -> str:
    return f"{label} {name}" if isinstance(name, str) and name else f"{list_field}[{index}]"


def _pod_spec_images(spec: Mapping[str, Any], path: tuple[str, ...]) -> list[ImageUse]:
    found = []
    for container_field in CONTAINER_FIELDS:
        containers = spec.get(container_field)
        if containers is None:
            continue
        if not isinstance(containers, list):
            raise MalformedReview(f"{json_pointer(*path, container_field)} must be a list.")
        for index, container in enumerate(containers):
            if not isinstance(container, Mapping):
                raise MalformedReview(
                    f"{json_pointer(*path, container_field, index)} must be an object."
                )
            image = container.get("image")
            if image is None or image == "":
                continue
            if not isinstance(image, str):
                raise MalformedReview(
                    f"{json_pointer(*path, container_field, index, 'image')} must be a string."
                )
            found.append(
                ImageUse(
                    pointer=json_pointer(*path, container_field, index, "image"),
                    used_by=_used_by(
                        _USED_BY[container_field], container.get("name"), container_field, index
                    ),
                    image=image,
                )
            )
    # Image volumes (Kubernetes 1.35 pulls them by default): the node pulls the reference
    # and mounts its content, so it is evaluated, and pinned, as a container image is.
    volumes = spec.get("volumes")
    if volumes is None:
        return found
    if not isinstance(volumes, list):
        raise MalformedReview(f"{json_pointer(*path, 'volumes')} must be a list.")
    for index, volume in enumerate(volumes):
        if not isinstance(volume, Mapping):
            raise MalformedReview(f"{json_pointer(*path, 'volumes', index)} must be an object.")
        source = volume.get("image")
        if source is None:
            continue
        if not isinstance(source, Mapping):
            raise MalformedReview(
                f"{json_pointer(*path, 'volumes', index, 'image')} must be an object."
            )
        reference = source.get("reference")
        if reference is None or reference == "":
            continue
        if not isinstance(reference, str):
            raise MalformedReview(
                f"{json_pointer(*path, 'volumes', index, 'image', 'reference')} must be a string."
            )
        found.append(
            ImageUse(
                pointer=json_pointer(*path, "volumes", index, "image", "reference"),
                used_by=_used_by("volume", volume.get("name"), "volumes", index),
                image=reference,
            )
        )
    return found


def distinct_images(uses: Iterable[ImageUse]) -> list[str]:
    return list(dict.fromkeys(use.image for use in uses))


def pinned_image(written: str, digest: str) -> str | None:
    """``written`` without its tag, at ``digest``: ``nginx:1.25`` → ``nginx@sha256:…``.

    The name stays as the user wrote it, so short names stay short (the whitespace around
    it goes, as evaluation drops it). None when ``written`` already names a digest (nothing
    to pin) or is not a reference.
    """
    if "@" in written:
        return None
    try:
        parse_image_reference(written)
    except InvalidReference:
        return None
    name = image_text(written)
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name = name[:colon]
    return f"{name}@{digest}"


# --- Verdicts ---------------------------------------------------------------------------

PASSED = "passed"
WARNED = "warned"
REFUSED = "denied"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What admission makes of one distinct image: it ``passed``, is ``warned`` about
    (permissive) or ``denied`` (enforced); ``pin`` is the verified digest for a tag."""

    image: str
    outcome: str
    reasons: tuple[str, ...]
    note: str | None = None  # why it passed unchecked (disabled, an off rule)
    pin: str | None = None
    rule: str | None = None  # the rule that applied, when the image was evaluated


def verdict_of(image: str, evaluation: Evaluation) -> Verdict:
    """The evaluation's decision as admission sees it.

    ``denied`` denies; ``allowed`` passes (pinning the verified digest of a tag);
    ``not_enforced`` passes when content trust is disabled and is warned about otherwise
    (permissive mode: the image failed).
    """
    reasons = evaluation.reasons
    rule = evaluation.rule.rule.name if evaluation.rule is not None else None
    if evaluation.decision == DENIED:
        return Verdict(image, REFUSED, reasons, rule=rule)
    if evaluation.decision == ALLOWED:
        exempt = reasons[0] if evaluation.mode == OFF else None  # its rule checks nothing
        pin = None
        if exempt is None and evaluation.digest is not None:
            pin = pinned_image(image, evaluation.digest)
        return Verdict(image, PASSED, reasons, note=exempt, pin=pin, rule=rule)
    if reasons[:1] == (DISABLED_REASON,):
        return Verdict(image, PASSED, reasons, note=DISABLED_REASON, rule=rule)
    return Verdict(image, WARNED, reasons, rule=rule)


def verdict_of_error(image: str, reason: str, mode: str) -> Verdict:
    """An image that could not be evaluated (unreachable Notary, not a reference) fails
    closed by ``mode``, the mode of the rule that applies to it (or the strictest that can,
    when it names no repository; ``off`` when content trust is disabled): denied when
    enforced, warned about when permissive."""
    if mode == OFF:
        return Verdict(image, PASSED, (DISABLED_REASON, reason), note=DISABLED_REASON)
    return Verdict(image, REFUSED if mode == ENFORCED else WARNED, (reason,))


# --- The answer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    message: str
    failing: tuple[Verdict, ...] = ()
    warnings: tuple[str, ...] = ()
    patch: tuple[dict[str, str], ...] = field(default=())

    def failing_json(self) -> list[dict[str, Any]]:
        return [
            {"image": v.image, "rule": v.rule, "reasons": list(v.reasons)} for v in self.failing
        ]


def allow(message: str) -> Decision:
    return Decision(allowed=True, message=message)


def _described(verdict: Verdict, used_by: Sequence[str]) -> str:
    """``[image] (rule production) reasons (used by container web, volume data)``."""
    rule = f"(rule {verdict.rule}) " if verdict.rule is not None else ""
    described = f"[{verdict.image}] {rule}" + "; ".join(verdict.reasons)
    return f"{described} (used by {', '.join(used_by)})" if used_by else described


def decide(
    *,
    uses: Sequence[ImageUse],
    verdicts: Mapping[str, Verdict],
    mutate: bool,
) -> Decision:
    """Compose the answer for a workload from the verdict on each of its distinct images;
    a failing image is named with what uses it (``container web``, ``volume data``)."""
    images = distinct_images(uses)
    used_by: dict[str, list[str]] = {}
    for use in uses:
        used_by.setdefault(use.image, []).append(use.used_by)
    refused = tuple(verdicts[image] for image in images if verdicts[image].outcome == REFUSED)
    warned = tuple(verdicts[image] for image in images if verdicts[image].outcome == WARNED)
    count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    if refused:
        return Decision(
            allowed=False,
            message=(
                f"Gatehouse content trust (enforced) denied {len(refused)} of {count}: "
                + " | ".join(_described(verdict, used_by[verdict.image]) for verdict in refused)
            ),
            failing=refused + warned,
        )
    notes = []
    for image in images:
        verdict = verdicts[image]
        if verdict.note == DISABLED_REASON:
            notes.append(f"[{image}] allowed: {DISABLED_REASON}")
        elif verdict.note is not None:
            notes.append(f"[{image}] allowed unchecked: {verdict.note}")
    patch: tuple[dict[str, str], ...] = ()
    if mutate:
        patch = tuple(
            {"op": "replace", "path": use.pointer, "value": pin}
            for use in uses
            if (pin := verdicts[use.image].pin) is not None
        )
    if warned:
        summary = f"Gatehouse content trust (permissive): {len(warned)} of {count} would be denied"
    else:
        summary = f"Gatehouse content trust: {count} allowed"
    if patch:
        summary += f"; pinned {len(patch)} to the signed digest"
    return Decision(
        allowed=True,
        message="; ".join([summary, *notes]) if notes else summary,
        failing=warned,
        warnings=tuple(
            "Gatehouse content trust (permissive) would deny "
            + _described(verdict, used_by[verdict.image])
            for verdict in warned
        ),
        patch=patch,
    )


def decide_unrecognised(*, mode: str, reason: str) -> Decision:
    """The answer for an object whose images cannot be found (``Workload.unrecognised``).

    It fails closed as an image that cannot be evaluated does, by the strictest mode any
    image in its namespace can meet (``Policy.strictest_mode``): denied when enforced,
    allowed with a warning when permissive, allowed when off.
    """
    if mode == OFF:
        return allow(f"Gatehouse content trust: {reason}; allowed: {DISABLED_REASON}")
    if mode == ENFORCED:
        return Decision(
            allowed=False,
            message=f"Gatehouse content trust (enforced) denied {reason}; failing closed",
        )
    warning = f"Gatehouse content trust (permissive) would deny {reason}"
    return Decision(allowed=True, message=warning, warnings=(warning,))


def response_json(uid: str, decision: Decision) -> dict[str, Any]:
    """The ``AdmissionReview`` that answers review ``uid``."""
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if decision.allowed:
        response["status"] = {"code": 200, "message": decision.message}
    else:
        response["status"] = {
            "status": "Failure",
            "code": 403,
            "reason": "Forbidden",
            "message": decision.message,
        }
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    if decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(list(decision.patch), separators=(",", ":")).encode()
        ).decode("ascii")
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


# --- The webhook configuration ----------------------------------------------------------

WEBHOOK_MODES = ("validate", "mutate")
WEBHOOK_TIMEOUT_SECONDS = 15
EXCLUDED_NAMESPACES = ("kube-system",)
MAX_CUSTOM_RESOURCES = 20

_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_CUSTOM_RESOURCE = re.compile(
    rf"(?P<group>{_DNS_LABEL}(?:\.{_DNS_LABEL})+)"
    r"/(?P<version>v[1-9][0-9]*(?:(?:alpha|beta)[1-9][0-9]*)?)"
    rf"/(?P<resource>{_DNS_LABEL})"
)


def parse_custom_resource(text: str) -> tuple[str, str, str]:
    """``argoproj.io/v1alpha1/rollouts`` as (API group, version, resource): a custom kind
    for the webhook configuration to register besides the built-in ones. ``ValueError``
    saying what is wrong otherwise.

    Admission reads a custom kind's pod spec at ``spec.template.spec`` or
    ``spec.jobTemplate.spec.template.spec``; an object of it with neither is denied.
    """
    match = _CUSTOM_RESOURCE.fullmatch(text)
    if match is None or len(match["group"]) > 253:
        raise ValueError(
            f"{text!r} is not <API group>/<version>/<resource> of a custom resource, such as "
            "argoproj.io/v1alpha1/rollouts (a group with a dot, the plural resource name, "
            "no subresource)"
        )
    return match["group"], match["version"], match["resource"]


@lru_cache(maxsize=32)
def webhook_configuration_yaml(
    *,
    mode: str,
    base_url: str,
    ca_bundle: bytes | None,
    custom_resources: tuple[tuple[str, str, str], ...] = (),
) -> str:
    """``webhook_configuration`` as the file to ``kubectl apply``, headed by how. Kept per
    process for each set of arguments, which decide it: writing the YAML is most of the
    work of the request that asks for it."""
    configuration = webhook_configuration(
        mode=mode, base_url=base_url, ca_bundle=ca_bundle, custom_resources=custom_resources
    )
    return (
        f"# Gatehouse content trust: {mode} admission webhook.\n"
        "# Apply with: kubectl apply -f <this file>\n"
        + yaml.safe_dump(configuration, sort_keys=False, default_flow_style=False)
    )


def webhook_configuration(
    *,
    mode: str,
    base_url: str,
    ca_bundle: bytes | None,
    name: str = "gatehouse-content-trust",
    custom_resources: Sequence[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """A ``Validating``/``MutatingWebhookConfiguration`` that sends CREATE and UPDATE of
    every kind admission reads a pod spec of (``WORKLOAD_RESOURCES``, and each of
    ``custom_resources``, from ``parse_custom_resource``) to Gatehouse at ``base_url``,
    failing closed."""
    if mode not in WEBHOOK_MODES:
        raise ValueError(f"mode is one of {', '.join(WEBHOOK_MODES)}, not {mode!r}")
    rules = [
        {
            "apiGroups": [group],
            "apiVersions": [version],
            "operations": ["CREATE", "UPDATE"],
            "resources": list(resources),
            "scope": "Namespaced",
        }
        for group, version, resources in WORKLOAD_RESOURCES
    ]
    custom: dict[tuple[str, str], list[str]] = {}
    for group, version, resource in custom_resources:
        resources = custom.setdefault((group, version), [])
        if resource not in resources:
            resources.append(resource)
    rules += [
        {
            "apiGroups": [group],
            "apiVersions": [version],
            "operations": ["CREATE", "UPDATE"],
            "resources": resources,
            "scope": "*",  # a custom kind may be cluster-scoped
        }
        for (group, version), resources in custom.items()
    ]
    client_config: dict[str, Any] = {"url": f"{base_url.rstrip('/')}/api/v1/admission/{mode}/"}
    if ca_bundle is not None:
        client_config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
    webhook: dict[str, Any] = {
        "name": f"{mode}.content-trust.gatehouse",
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config,
        "rules": rules,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": list(EXCLUDED_NAMESPACES),
                }
            ]
        },
    }
    if mode == "mutate":
        # Another mutating webhook may change an image after Gatehouse pinned it.
        webhook["reinvocationPolicy"] = "IfNeeded"
    kind = "MutatingWebhookConfiguration" if mode == "mutate" else "ValidatingWebhookConfiguration"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": [webhook],
    }
