"""Conventions shared by every endpoint under ``/api/v1/``."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, pagination, permissions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Let services raise Django's ``ValidationError``; the API answers it as a 400."""
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
