"""Conventions shared by every endpoint under ``/api/v1/``."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, pagination, permissions
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
