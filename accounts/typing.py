"""Requests whose user is signed in, for the type checker (django-stubs' recommended way).

``request.user`` is ``User | AnonymousUser`` to mypy. A console view behind
``login_required`` or ``gatehouse.views.admin_required``, and an API view whose permissions
need a signed-in user (``IsAuthenticated``, the default here, or ``gatehouse.api.IsAdmin``),
only ever sees a ``User``: typing its ``request`` as one of these says so. A viewset whose
every action is such declares ``request: AuthenticatedRequest`` in its body, for
``self.request`` (``get_queryset``).

They are for annotations only: Django and DRF still pass their own request objects, and
nothing here checks anything at run time, so mypy takes the annotation on trust. Never put
one on a view that anyone signed out can reach.
"""

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """A console request that a login check has let through."""

    user: User


class AuthenticatedRequest(Request):
    """An API request that a permission needing a signed-in user has let through."""

    user: User
