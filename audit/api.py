"""``GET /api/v1/audit/``: the audit log, for admins, read-only."""

from typing import Any

import django_filters
from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets

from audit import selectors
from audit.models import AuditEntry
from gatehouse.api import DateTimeField, IsAdmin, ModelSerializer


class AuditEntrySerializer(ModelSerializer):
    actor_name = serializers.CharField(
        read_only=True,
        help_text="Who acted, by username, kept if the user is deleted; for `login.failed` "
        "the account that was tried, or the name as typed when no account has it; empty "
        "for Gatehouse itself.",
    )
    occurrences = serializers.IntegerField(
        read_only=True,
        help_text="How many identical events the entry stands for: 1, or more when repeats "
        "(of a denied evaluation) were folded into it.",
    )
    last_occurred_at = DateTimeField(
        read_only=True, help_text="When the last of them happened (`created_at` for one)."
    )

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor_name",
            "address",
            "action",
            "target_type",
            "target_id",
            "before",
            "after",
            "occurrences",
            "last_occurred_at",
        ]
        read_only_fields = fields


class AuditFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(method="filter_entries", label="Username of the actor")
    action = django_filters.CharFilter(method="filter_entries", label="Action prefix")
    target_type = django_filters.CharFilter(method="filter_entries", label="Object type")
    target_id = django_filters.CharFilter(method="filter_entries", label="Object id")
    since = django_filters.IsoDateTimeFilter(
        method="filter_entries", label="At or after (ISO 8601 date-time)"
    )
    until = django_filters.IsoDateTimeFilter(
        method="filter_entries", label="At or before (ISO 8601 date-time)"
    )

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def filter_entries(
        self, queryset: QuerySet[AuditEntry], name: str, value: Any
    ) -> QuerySet[AuditEntry]:
        return selectors.audit_filter(queryset, **{name: value})


class AuditEntryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who changed what, when and from where, newest first. Entries cannot be changed."""

    queryset = AuditEntry.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = AuditEntrySerializer
    filterset_class = AuditFilter
    permission_classes = [IsAdmin]

    def get_queryset(self) -> QuerySet[AuditEntry]:
        return selectors.audit_entries(viewer=self.request.user)
