"""Conventions shared by every endpoint under ``/api/v1/``."""

import datetime as dt
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError, models
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, pagination, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback
from rest_framework.views import exception_handler as drf_exception_handler

from gatehouse.parsers import payload_too_large

logger = logging.getLogger("gatehouse.database")

# A database that cannot be reached (down, restarting, refusing connections): the request may
# succeed if repeated shortly, so it is answered 503 with Retry-After, not 500.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE_DETAIL = "The database is unavailable; try again shortly."
RETRY_AFTER_SECONDS = 5


def log_database_unavailable(exc: BaseException, path: str) -> None:
    """One WARNING line: the exception's class and the path, never its message (which may
    name the host, user or database of the connection)."""
    logger.warning(
        "database unavailable (%s.%s) answering %s: 503",
        type(exc).__module__,
        type(exc).__name__,
        path,
    )


class Pagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


PAGING_PARAMETERS = frozenset({Pagination.limit_query_param, Pagination.offset_query_param})


class ListFilterBackend(DjangoFilterBackend):
    """A list's query-parameter filters, applied to lists, when the request gives any.

    DRF runs the filter backends in ``get_object`` too, so a read of one object would build
    and validate the list's whole filter form for nothing (a fifth of a user's read); the
    filters are documented on lists only, and one object is found by its key. A list asked
    for with no parameter but paging's would build the same form to filter by nothing (an
    empty value filters nothing, django-filter's rule for every filter and method).
    """

    def filter_queryset(self, request: Request, queryset: QuerySet, view: APIView) -> QuerySet:
        if getattr(view, "detail", False) or request.query_params.keys() <= PAGING_PARAMETERS:
            return queryset
        return super().filter_queryset(request, queryset, view)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Let services raise Django's ``ValidationError``; the API answers it as a 400.

    A database that cannot be reached is a 503 with ``Retry-After``, not a 500. A body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413 (DRF reads ``request.body``, which refuses it).
    """
    if isinstance(exc, RequestDataTooBig):
        exc = payload_too_large()
    if isinstance(exc, DATABASE_UNAVAILABLE):
        request = context.get("request")
        log_database_unavailable(exc, request.path if request is not None else "?")
        set_rollback()
        return Response(
            {"detail": DATABASE_UNAVAILABLE_DETAIL},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "This conflicts with what exists."
    default_code = "conflict"


class IsAdmin(permissions.BasePermission):
    """Admins only: the permission for every write that is not about oneself."""

    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_admin)


# Serializer fields that do once per response what DRF's do once per value: reversing each
# row's link and reading the current timezone for each date were more than half of the time
# a list of 50 jobs took to serialize. What they answer is DRF's, to the byte.

# Keys of what a response's serializers share through their context (one dict per response).
_LINKS = "gatehouse.api links"
_TIMEZONE = "gatehouse.api timezone"

# Reversed in place of an object's key; digits, so any URL pattern for an id takes it.
_STAND_IN = 7_309_214_655_801_337


class IdentityLinkField(serializers.HyperlinkedIdentityField):
    """``HyperlinkedIdentityField`` reversing its view once per response, with a stand-in
    for the key that each object's integer key then replaces.

    Django's ``reverse`` writes an integer as its digits, unquoted, so the link is the one
    ``reverse`` would make; any other key, or a stand-in the URL holds other than once, is
    reversed per object as DRF does.
    """

    def get_url(self, obj: Any, view_name: str, request: Any, format: str | None) -> str | None:
        key = getattr(obj, self.lookup_field, None)
        if type(key) is not int:
            return super().get_url(obj, view_name, request, format)
        links = self.context.setdefault(_LINKS, {})
        around = links.get((view_name, self.lookup_url_kwarg, format))
        if around is None:
            stand_in = str(_STAND_IN)
            kwargs = {self.lookup_url_kwarg: stand_in}
            url = self.reverse(view_name, kwargs=kwargs, request=request, format=format)
            around = tuple(url.split(stand_in)) if url.count(stand_in) == 1 else ()
            links[(view_name, self.lookup_url_kwarg, format)] = around
        if not around:
            return super().get_url(obj, view_name, request, format)
        return f"{around[0]}{key}{around[1]}"


class DateTimeField(serializers.DateTimeField):
    """``DateTimeField`` reading the current timezone once per response: it is a
    context-local, slower to read than the date is to format."""

    # The stubs have it return a timezone's name; DRF returns the timezone.
    def default_timezone(self) -> dt.tzinfo | None:  # type: ignore[override]
        context = self.context
        if _TIMEZONE not in context:
            context[_TIMEZONE] = super().default_timezone()
        return context[_TIMEZONE]


# DRF's, with the model's date-times as the DateTimeField above. No docstring: the schema
# would describe each serializer by it.
class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
    }
