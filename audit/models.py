"""The audit log: one row per change, written once and never changed or deleted."""

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """An audit entry cannot be changed or deleted."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise AppendOnly("Audit entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for Gatehouse itself and for anonymous callers.",
    )
    actor_name = models.CharField(
        max_length=150, blank=True, help_text="The username, kept if the user is deleted."
    )
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["actor_name", "created_at"]),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit entries cannot be deleted.")

    @property
    def occurrences(self) -> int:
        """How many identical events this entry stands for: 1, unless repeats were folded
        into it (``AuditFold``)."""
        try:
            return self.fold.occurrences
        except AuditFold.DoesNotExist:
            return 1

    @property
    def last_occurred_at(self):  # -> datetime
        try:
            return self.fold.last_at
        except AuditFold.DoesNotExist:
            return self.created_at


class AuditFold(models.Model):
    """The count beside an entry that stands for repeated identical events
    (``audit.services.audit_record_folded``): the entry itself is never changed; this
    row counts it and its repeats, and says when the last was.

    ``key`` is a digest of what makes events identical (action, actor, address, object and
    details); ``group`` one of action, actor and address, to cap how many distinct entries
    one caller writes in a window.
    """

    entry = models.OneToOneField(
        AuditEntry, on_delete=models.CASCADE, primary_key=True, related_name="fold"
    )
    key = models.CharField(max_length=64)
    group = models.CharField(max_length=64)
    occurrences = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["key", "first_at"]),
            models.Index(fields=["group", "first_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.entry} x{self.occurrences}"
