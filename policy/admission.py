"""Kubernetes admission reviews: read an ``AdmissionReview``, find every container image of
the workload, and compose the answer from the content-trust evaluations.

Pure functions over plain data and ``policy.evaluation`` results, with no I/O and no Django:
``policy.services.admission_review`` reads the policy, evaluates the images and records the
decision. The wire format is ``admission.k8s.io/v1`` (Kubernetes' "Dynamic Admission
Control"): the answer echoes ``request.uid``; a denial carries ``status.code`` 403 and a
message; ``warnings`` reach the user's ``kubectl``; a mutation is a base64 RFC 6902 JSON Patch.
"""

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policy.evaluation import (
    ALLOWED,
    DENIED,
    ENFORCED,
    Evaluation,
    InvalidReference,
    PolicyRules,
    parse_image_reference,
)

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
DISABLED_REASON = "content trust is disabled"  # evaluation.evaluate's lead reason

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")

# What the webhook configuration registers: (API group, version, resources).
WORKLOAD_RESOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "v1", ("pods", "pods/ephemeralcontainers")),
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


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """One container's ``image`` and the JSON pointer to it within the object."""

    pointer: str
    container: str
    image: str


def parse_review(body: bytes | str) -> Review:
    """The review in ``body``, or ``MalformedReview`` saying what is wrong with it."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedReview(f"The body is not JSON: {error}.") from error
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
    if not isinstance(kind, str) or not kind:
        kind = obj.get("kind") if obj is not None else None
    return Review(
        uid=uid,
        kind=kind if isinstance(kind, str) else "",
        namespace=_text(request.get("namespace")) or _text(metadata.get("namespace")),
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


def container_images(kind: str, obj: Mapping[str, Any] | None) -> list[ContainerImage]:
    """Every container image of a workload, with its pointer, in the order of the spec.

    Kinds that are not workloads have none. A container without an image is skipped (the
    API server rejects it in validation); a structure of the wrong type is malformed.
    """
    path = POD_SPEC_PATHS.get(kind)
    if path is None or obj is None:
        return []
    spec: Any = obj
    for key in path:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
        if spec is None:
            return []
    if not isinstance(spec, Mapping):
        raise MalformedReview(f"{json_pointer(*path)} of a {kind} must be an object.")
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
                ContainerImage(
                    pointer=json_pointer(*path, container_field, index, "image"),
                    container=_text(container.get("name")),
                    image=image,
                )
            )
    return found


def distinct_images(containers: Iterable[ContainerImage]) -> list[str]:
    return list(dict.fromkeys(container.image for container in containers))


def pinned_image(written: str, digest: str) -> str | None:
    """``written`` without its tag, at ``digest``: ``nginx:1.25`` → ``nginx@sha256:…``.

    The name stays as the user wrote it, so short names stay short. None when ``written``
    already names a digest (nothing to pin) or is not a reference.
    """
    if "@" in written:
        return None
    try:
        parse_image_reference(written)
    except InvalidReference:
        return None
    name = written
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
    note: str | None = None  # why it passed unchecked (disabled, allow_repos)
    pin: str | None = None


def verdict_of(image: str, evaluation: Evaluation, rules: PolicyRules) -> Verdict:
    """The evaluation's decision as admission sees it.

    ``denied`` denies; ``allowed`` passes (pinning the verified digest of a tag);
    ``not_enforced`` passes when content trust is disabled and is warned about otherwise
    (permissive mode: the image failed).
    """
    reasons = evaluation.reasons
    if evaluation.decision == DENIED:
        return Verdict(image, REFUSED, reasons)
    if evaluation.decision == ALLOWED:
        exempt = reasons[0] if reasons and reasons[0].startswith("exempt: ") else None
        pin = None
        if exempt is None and evaluation.digest is not None:
            pin = pinned_image(image, evaluation.digest)
        return Verdict(image, PASSED, reasons, note=exempt, pin=pin)
    if not rules.enabled or reasons[:1] == (DISABLED_REASON,):
        return Verdict(image, PASSED, reasons, note=DISABLED_REASON)
    return Verdict(image, WARNED, reasons)


def verdict_of_error(image: str, reason: str, rules: PolicyRules) -> Verdict:
    """An image that could not be evaluated (unreachable Notary, not a reference) fails
    closed: denied when enforced, warned about when permissive."""
    if not rules.enabled:
        return Verdict(image, PASSED, (DISABLED_REASON, reason), note=DISABLED_REASON)
    return Verdict(image, REFUSED if rules.mode == ENFORCED else WARNED, (reason,))


# --- The answer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    message: str
    failing: tuple[Verdict, ...] = ()
    warnings: tuple[str, ...] = ()
    patch: tuple[dict[str, str], ...] = field(default=())

    def failing_json(self) -> list[dict[str, Any]]:
        return [{"image": v.image, "reasons": list(v.reasons)} for v in self.failing]


def allow(message: str) -> Decision:
    return Decision(allowed=True, message=message)


def _described(verdict: Verdict) -> str:
    return f"[{verdict.image}] " + "; ".join(verdict.reasons)


def decide(
    *,
    rules: PolicyRules,
    containers: Sequence[ContainerImage],
    verdicts: Mapping[str, Verdict],
    mutate: bool,
) -> Decision:
    """Compose the answer for a workload from the verdict on each of its distinct images."""
    images = distinct_images(containers)
    refused = tuple(verdicts[image] for image in images if verdicts[image].outcome == REFUSED)
    warned = tuple(verdicts[image] for image in images if verdicts[image].outcome == WARNED)
    count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    if refused:
        return Decision(
            allowed=False,
            message=(
                f"Gatehouse content trust (enforced) denied {len(refused)} of {count}: "
                + " | ".join(_described(verdict) for verdict in refused)
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
            {"op": "replace", "path": container.pointer, "value": pin}
            for container in containers
            if (pin := verdicts[container.image].pin) is not None
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
            f"Gatehouse content trust (permissive) would deny {_described(verdict)}"
            for verdict in warned
        ),
        patch=patch,
    )


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


def webhook_configuration(
    *, mode: str, base_url: str, ca_bundle: bytes | None, name: str = "gatehouse-content-trust"
) -> dict[str, Any]:
    """A ``Validating``/``MutatingWebhookConfiguration`` that sends the workload kinds'
    CREATE and UPDATE to Gatehouse at ``base_url``, failing closed."""
    if mode not in WEBHOOK_MODES:
        raise ValueError(f"mode is one of {', '.join(WEBHOOK_MODES)}, not {mode!r}")
    client_config: dict[str, Any] = {"url": f"{base_url.rstrip('/')}/api/v1/admission/{mode}/"}
    if ca_bundle is not None:
        client_config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
    webhook: dict[str, Any] = {
        "name": f"{mode}.content-trust.gatehouse",
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config,
        "rules": [
            {
                "apiGroups": [group],
                "apiVersions": [version],
                "operations": ["CREATE", "UPDATE"],
                "resources": list(resources),
                "scope": "Namespaced",
            }
            for group, version, resources in WORKLOAD_RESOURCES
        ],
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
