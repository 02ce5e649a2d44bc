"""The content-trust policy: whether signatures are required, from which teams, and where not.

One policy for the whole installation, as UCP had; every change keeps a version.
"""

import uuid

from django.conf import settings
from django.db import models

DEFAULT_EXEMPT_NAMESPACES = ("kube-system",)


def default_exempt_namespaces() -> list[str]:
    """The exempt namespaces' default before rules (migration 0002 names it)."""
    return list(DEFAULT_EXEMPT_NAMESPACES)


def default_document() -> dict:
    """A new installation's policy: every image needs trust data, no team is required yet,
    and ``kube-system`` is exempt (its workloads run the cluster itself)."""
    return {
        "default": {"mode": "enforced", "require": {"match": "all", "teams": []}},
        "rules": [
            {
                "name": "exempt-namespaces",
                "images": [],
                "namespaces": list(DEFAULT_EXEMPT_NAMESPACES),
                "mode": "off",
                "require": {"match": "all", "teams": []},
            }
        ],
    }


class ContentTrustPolicy(models.Model):
    """The one policy: the switch, and the default rule and the ordered rules as one
    document (``policy.rules``), read with ``policy_from_document``."""

    enabled = models.BooleanField(default=False, help_text="Run only signed images.")
    document = models.JSONField(
        default=default_document, help_text="The default rule and the rules (policy.rules)."
    )
    version = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "content trust policies"
        permissions = [
            (
                "review_admission",
                "May ask for Kubernetes admission reviews (the API server's service account)",
            )
        ]

    def __str__(self) -> str:
        return f"content trust policy v{self.version}"


class EvaluationInputs(models.Model):
    """A counter of changes to what evaluations read: policy, people, teams, keys.

    Evaluations cache the policy and the key owners per process and check this one row
    instead of reading them all again, so a change still counts at the very next
    evaluation. ``epoch`` is new with every database, so a cache never outlives one.
    """

    epoch = models.UUIDField(default=uuid.uuid4)
    generation = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"evaluation inputs {self.epoch}/{self.generation}"


class PolicyVersion(models.Model):
    """The policy as it was after each change, who made it, and which fields changed."""

    number = models.PositiveIntegerField(unique=True)
    policy = models.JSONField(help_text="The policy document after this change.")
    changed = models.JSONField(default=list, help_text="The fields that changed, dotted.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"policy version {self.number}"


class AdmissionDecision(models.Model):
    """What the Kubernetes admission webhook answered to one ``AdmissionReview``.

    ``failing`` lists ``{"image": ..., "reasons": [...]}`` for each image that failed the
    policy (denied in enforced mode, warned about in permissive mode). ``images`` records
    every image evaluated and what its trust data said whatever the rules (``policy.preview``
    judges a draft policy by them): ``{"image", "digest", "missing", "examined",
    "signatures": [[username, key_id], ...]}``.
    """

    uid = models.CharField(max_length=128)
    webhook = models.CharField(max_length=8, help_text="validate or mutate")
    namespace = models.CharField(max_length=253, blank=True)
    kind = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=253, blank=True)
    operation = models.CharField(max_length=16)
    allowed = models.BooleanField()
    failing = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    pinned = models.PositiveIntegerField(default=0, help_text="Images pinned to their digest.")
    images = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"{self.operation} {self.kind} {self.namespace}/{self.name}: {verdict}"
