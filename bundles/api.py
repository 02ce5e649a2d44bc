"""``/api/v1/bundles/`` and ``/api/v1/users/{username}/keys/``."""

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.selectors import users_visible
from accounts.typing import AuthenticatedRequest
from bundles import selectors, services
from bundles.certificates import SIGNATURE_MAX
from bundles.models import PublicKey
from gatehouse.api import Conflict, DateTimeField, ModelSerializer

LABEL_MAX = services.LABEL_MAX


class BundleRequestSerializer(serializers.Serializer):
    # The stubs take a field named "label" for Field.label (djangorestframework-stubs#78).
    label = serializers.CharField(max_length=LABEL_MAX, required=False, allow_blank=True)  # type: ignore[assignment]
    signing = serializers.BooleanField(required=False, default=False)


class PublicKeySerializer(ModelSerializer):
    signing_role = serializers.SerializerMethodField(
        help_text="The owner's own Notary role, targets/<name>, that a signing key signs in."
    )

    class Meta:
        model = PublicKey
        fields = [
            "id",
            "signing_role",
            "label",
            "is_signing_key",
            "algorithm",
            "certificate",
            "source",
            "created_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_signing_role(self, key: PublicKey) -> str | None:
        # (No docstring: the schema would take it for the field's description.)
        if not key.is_signing_key:
            return None
        # The API's reads annotate the role's name; a key just written has its owner's read.
        if hasattr(key, "signing_role_name"):
            name = key.signing_role_name
            return f"targets/{name}" if name is not None else None
        role = getattr(key.user, "signing_role", None)
        return role.role if role is not None else None


# The key's own columns a read shows: all but the owner's role, annotated beside them.
SHOWN_COLUMNS = [name for name in PublicKeySerializer.Meta.fields if name != "signing_role"]


class PublicKeyUpdateSerializer(serializers.Serializer):
    # The stubs take a field named "label" for Field.label (djangorestframework-stubs#78).
    label = serializers.CharField(max_length=LABEL_MAX, required=False, allow_blank=True)  # type: ignore[assignment]
    is_signing_key = serializers.BooleanField(required=False)


class PublicKeyRegisterSerializer(serializers.Serializer):
    certificate = serializers.CharField(
        max_length=20000, trim_whitespace=False, help_text="PEM. Never a private key."
    )
    nonce = serializers.CharField(
        max_length=services.NONCE_MAX,
        help_text="From POST /api/v1/keys/challenge/, by the caller, in the last 10 minutes.",
    )
    signature = serializers.CharField(
        max_length=2 * SIGNATURE_MAX,
        help_text="Base64 DER signature of the nonce with the certificate's private key, "
        'SHA-256: printf %s "$NONCE" | openssl dgst -sha256 -sign key.pem | base64 -w0',
    )
    # The stubs take a field named "label" for Field.label (djangorestframework-stubs#78).
    label = serializers.CharField(max_length=LABEL_MAX, required=False, allow_blank=True)  # type: ignore[assignment]
    signing = serializers.BooleanField(required=False, default=False)


class ChallengeSerializer(serializers.Serializer):
    nonce = serializers.CharField()
    expires_at = DateTimeField()


class BundleView(APIView):
    """Issue a client bundle to the caller: a fresh keypair every time."""

    @extend_schema(
        request=BundleRequestSerializer,
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    def post(self, request: AuthenticatedRequest) -> HttpResponse:
        data = BundleRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bundle = services.bundle_issue(user=request.user, **data.validated_data)
        return zip_response(bundle, username=request.user.username)


def zip_response(bundle: services.IssuedBundle, *, username: str) -> HttpResponse:
    """The bundle as a download that no cache keeps (it holds a private key)."""
    response = HttpResponse(bundle.archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="gatehouse-bundle-{username}.zip"'
    response["Cache-Control"] = "no-store"
    response["X-Gatehouse-Key-Id"] = bundle.key.id
    return response


class KeyChallengeView(APIView):
    """A nonce to sign with the private key of a certificate you are about to register: the
    proof that the key is yours. Yours alone, for 10 minutes, for one registration."""

    @extend_schema(request=None, responses={200: ChallengeSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        challenge = services.registration_challenge_issue(user=request.user)
        return Response({"nonce": challenge.nonce, "expires_at": challenge.expires_at})


class ClientCAView(APIView):
    """The client CA certificate, which signs every bundle's ``cert.pem``."""

    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(services.client_ca_certificate(), content_type="application/x-pem-file")


class PublicKeyViewSet(viewsets.GenericViewSet):
    """A user's public keys. Their owner and admins see them; for anyone else they are 404."""

    request: AuthenticatedRequest  # every action needs a signed-in user

    queryset = PublicKey.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = PublicKeySerializer
    lookup_value_regex = r"[0-9a-f]{1,64}"

    def owner(self) -> User:
        return get_object_or_404(
            users_visible(viewer=self.request.user), username=self.kwargs["username"]
        )

    def get_queryset(self) -> QuerySet[PublicKey]:
        if self.action in {"list", "retrieve"}:
            return selectors.public_keys_shown(
                viewer=self.request.user, username=self.kwargs["username"], columns=SHOWN_COLUMNS
            )
        return selectors.public_key_list(viewer=self.request.user, owner=self.owner())

    def list(self, request: Request, username: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        if not page:
            self.owner()  # an empty page is a 404 when there is no owner one may see
        return self.get_paginated_response(PublicKeySerializer(page, many=True).data)

    def retrieve(self, request: Request, username: str, pk: str) -> Response:
        try:
            key = self.get_object()
        except Http404:
            self.owner()  # the 404 names what is missing: the owner, else the key
            raise
        return Response(PublicKeySerializer(key).data)

    @extend_schema(request=PublicKeyRegisterSerializer, responses={201: PublicKeySerializer})
    def create(self, request: AuthenticatedRequest, username: str) -> Response:
        owner = self.owner()
        data = PublicKeyRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            key = services.public_key_register(
                actor=request.user, user=owner, **data.validated_data
            )
        except services.KeyAlreadyRegistered as error:
            raise Conflict(str(error)) from error
        return Response(PublicKeySerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PublicKeyUpdateSerializer, responses={200: PublicKeySerializer})
    def partial_update(self, request: AuthenticatedRequest, username: str, pk: str) -> Response:
        key = self.get_object()
        data = PublicKeyUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.public_key_update(actor=request.user, key=key, **data.validated_data)
        return Response(PublicKeySerializer(key).data)

    @extend_schema(responses={204: None}, description="Revokes the key; it stays in the history.")
    def destroy(self, request: AuthenticatedRequest, username: str, pk: str) -> Response:
        services.public_key_revoke(actor=request.user, key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
