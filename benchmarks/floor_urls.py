"""Gatehouse's routes, and two that do nothing but what every API request does: DRF's view,
negotiation and rendering, without and then with the bearer token's check. They show what
an API request costs before it reads anything of its own."""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gatehouse.urls import urlpatterns as gatehouse_urlpatterns


class Anonymous(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    schema = None  # not part of the API's schema

    def get(self, request: Request) -> Response:
        return Response({"floor": "drf"})


class Authenticated(APIView):
    """The default authentication and permission: the bearer token, looked up."""

    schema = None

    def get(self, request: Request) -> Response:
        return Response({"floor": "drf", "user": request.user.username})


urlpatterns = [
    path("floor/drf", Anonymous.as_view()),
    path("floor/drf-token", Authenticated.as_view()),
    *gatehouse_urlpatterns,
]
