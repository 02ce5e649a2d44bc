"""The console's Audit page: the log for admins, filtered and paged, newest first."""

from typing import Any

import django_filters
from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from audit import selectors
from audit.models import AuditEntry
from gatehouse.views import admin_required

ENTRIES_PER_PAGE = 50


def _text(placeholder: str) -> forms.TextInput:
    return forms.TextInput(attrs={"placeholder": placeholder, "type": "search"})


def _date(label: str) -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date", "title": label})


class AuditPageFilter(django_filters.FilterSet):
    """``?actor=``, ``?action=`` (prefix), ``?target_type=``, ``?target_id=``, and the
    dates ``?from=`` and ``?to=`` (inclusive)."""

    actor = django_filters.CharFilter(
        method="filter_entries", label="Actor", widget=_text("Username")
    )
    action = django_filters.CharFilter(
        method="filter_entries", label="Action", widget=_text("Action, e.g. membership.")
    )
    target_type = django_filters.CharFilter(
        method="filter_entries", label="Object type", widget=_text("Object type")
    )
    target_id = django_filters.CharFilter(
        method="filter_entries", label="Object", widget=_text("Object id")
    )

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def filter_entries(
        self, queryset: QuerySet[AuditEntry], name: str, value: Any
    ) -> QuerySet[AuditEntry]:
        keyword = {"from": "since", "to": "until"}.get(name, name)
        return selectors.audit_filter(queryset, **{keyword: value})


# ``from`` is a keyword, so the date filters are added by name.
AuditPageFilter.base_filters["from"] = django_filters.DateFilter(
    field_name="from", method="filter_entries", label="From", widget=_date("From (date)")
)
AuditPageFilter.base_filters["to"] = django_filters.DateFilter(
    field_name="to", method="filter_entries", label="To", widget=_date("To (date, inclusive)")
)


@require_safe
@admin_required
def audit_list(request: HttpRequest) -> HttpResponse:
    filters = AuditPageFilter(request.GET, queryset=selectors.audit_entries(viewer=request.user))
    page = Paginator(filters.qs, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    filtered = any(request.GET.get(name) for name in filters.filters)
    rows = [(entry, selectors.audit_changes(entry.before, entry.after)) for entry in page]
    return render(
        request,
        "audit/list.html",
        {"filters": filters, "page": page, "rows": rows, "filtered": filtered},
    )
