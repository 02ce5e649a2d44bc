"""The content-trust policy: whether signatures are required, from which teams, and where not.

One policy for the whole installation, as UCP had; every change keeps a version.
"""

from django.conf import settings
from django.db import models

from accounts.models import Team


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
    version = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "content trust policies"

    def __str__(self) -> str:
        return f"content trust policy v{self.version}"


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
