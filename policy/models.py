"""The content-trust policy: whether signatures are required, from which teams, and where not.

One policy for the whole installation, as UCP had; every change keeps a version.
"""

import uuid

from django.conf import settings
from django.db import models

from accounts.models import Team

DEFAULT_EXEMPT_NAMESPACES = ("kube-system",)


def default_exempt_namespaces() -> list[str]:
    """Namespaces whose workloads admission allows unchecked, unless the admin says otherwise."""
    return list(DEFAULT_EXEMPT_NAMESPACES)


class ContentTrustPolicy(models.Model):
    class Mode(models.TextChoices):
        PERMISSIVE = "permissive", "Permissive: evaluate and report, never deny"
        ENFORCED = "enforced", "Enforced: deny what fails"

    enabled = models.BooleanField(default=False, help_text="Run only signed images.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ENFORCED)
    signing_teams = models.ManyToManyField(Team, blank=True, related_name="+")
    allow_repos = models.JSONField(
        default=list, blank=True, help_text="GUN patterns exempt from the policy."
    )
    exempt_namespaces = models.JSONField(
        default=default_exempt_namespaces,
        blank=True,
        help_text="Kubernetes namespaces whose workloads admission allows without checking.",
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
    policy = models.JSONField(help_text="The settings after this change.")
    changed = models.JSONField(default=list)
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
    policy (denied in enforced mode, warned about in permissive mode).
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
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"{self.operation} {self.kind} {self.namespace}/{self.name}: {verdict}"
