"""``/api/v1/trust/root/`` (the root key, its export, the ``daemon.json`` pins) and
``/api/v1/trust/pins/``."""

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.typing import AuthenticatedRequest
from gatehouse.api import Conflict, IsAdmin, ModelSerializer
from trust import custody, pins, selectors
from trust.models import RootKeyPin
from trust.services import root_key


class RootExportSerializer(serializers.Serializer):
    passphrase = serializers.CharField(
        min_length=root_key.ROOT_EXPORT_MIN_PASSPHRASE,
        max_length=1024,
        trim_whitespace=False,
        write_only=True,
    )


class TrustRootView(APIView):
    """The root key every Gatehouse repository shares, and the ``daemon.json`` section that
    pins it, the adopted repositories' roots and the admins' pins (``trust.pins``).

    Reading never makes the root key: until something has, ``root_key_id`` is null and
    ``message`` says how to make it.
    """

    permission_classes = [IsAdmin]

    @extend_schema(
        responses=inline_serializer(
            "TrustRoot",
            {
                "root_key_id": serializers.CharField(
                    allow_null=True, help_text="`null` until the root key is made."
                ),
                "message": serializers.CharField(
                    allow_null=True,
                    help_text="`null` once the root key exists; until then, how to make it.",
                ),
                "exported": serializers.BooleanField(),
                "daemon_json": serializers.DictField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        key_id, exported = selectors.root_key_status()
        return Response(
            {
                "root_key_id": key_id,
                "message": None if key_id else custody.ROOT_KEY_MISSING,
                "exported": exported,
                "daemon_json": pins.trust_pinning_snippet(),
            }
        )


class TrustRootExportView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=RootExportSerializer,
        responses={
            (200, "application/x-pem-file"): OpenApiResponse(OpenApiTypes.STR),
            409: OpenApiResponse(
                description="There is no root key yet; `detail` says how to make it."
            ),
        },
    )
    def post(self, request: AuthenticatedRequest) -> HttpResponse:
        data = RootExportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            pem = root_key.root_key_export(actor=request.user, **data.validated_data)
        except custody.RootKeyMissing as error:
            raise Conflict(str(error)) from error
        response = HttpResponse(pem, content_type="application/x-pem-file")
        response["Content-Disposition"] = 'attachment; filename="gatehouse-root-key.pem"'
        response["Cache-Control"] = "no-store"
        return response


class RootKeyPinSerializer(ModelSerializer):
    key_ids = serializers.ListField(child=serializers.CharField())
    created_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)

    class Meta:
        model = RootKeyPin
        fields = ["id", "pattern", "key_ids", "created_by", "created_at", "updated_at"]
        read_only_fields = fields


# Shape only: ``trust.pins`` validates patterns and key IDs, in the console's words too.
KEY_IDS = serializers.ListField(child=serializers.CharField(trim_whitespace=False), max_length=100)


class RootKeyPinCreateSerializer(serializers.Serializer):
    pattern = serializers.CharField(trim_whitespace=False)
    key_ids = KEY_IDS


class RootKeyPinUpdateSerializer(serializers.Serializer):
    key_ids = KEY_IDS
    pattern = serializers.CharField(required=False, trim_whitespace=False)


class RootKeyPinViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Admins' pins of the roots of repositories Gatehouse neither made nor adopted: a GUN,
    or a GUN prefix ending in ``*``, to root key IDs. Admins only."""

    queryset = RootKeyPin.objects.none()  # names the model for the schema
    serializer_class = RootKeyPinSerializer
    permission_classes = [IsAdmin]

    def get_queryset(self) -> QuerySet[RootKeyPin]:
        return pins.root_key_pin_list()

    @extend_schema(request=RootKeyPinCreateSerializer, responses={201: RootKeyPinSerializer})
    def create(self, request: AuthenticatedRequest) -> Response:
        data = RootKeyPinCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pin = pins.root_key_pin_create(actor=request.user, **data.validated_data)
        return Response(RootKeyPinSerializer(pin).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RootKeyPinUpdateSerializer, responses={200: RootKeyPinSerializer})
    def partial_update(self, request: AuthenticatedRequest, pk: str) -> Response:
        pin = self.get_object()
        data = RootKeyPinUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data.get("pattern", pin.pattern) != pin.pattern:
            raise serializers.ValidationError(
                {"pattern": ["A pin's pattern cannot be changed: delete the pin and add another."]}
            )
        pin = pins.root_key_pin_update(
            actor=request.user, pin=pin, key_ids=data.validated_data["key_ids"]
        )
        return Response(RootKeyPinSerializer(pin).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: AuthenticatedRequest, pk: str) -> Response:
        pins.root_key_pin_delete(actor=request.user, pin=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
