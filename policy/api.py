"""``/api/v1/policy/content-trust/`` and ``/api/v1/policy/evaluate/``."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gatehouse.api import IsAdmin
from policy import selectors, services
from policy.models import ContentTrustPolicy
from trust.notary.errors import NotaryUnavailable


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Notary cannot be reached."
    default_code = "notary_unavailable"


class PolicySerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    mode = serializers.ChoiceField(choices=ContentTrustPolicy.Mode.values)
    signing_teams = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=100
    )
    allow_repos = serializers.ListField(
        child=serializers.CharField(max_length=255), max_length=services.MAX_ALLOW_REPOS
    )


class PolicyReadSerializer(PolicySerializer):
    version = serializers.IntegerField()
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


def policy_data(policy: ContentTrustPolicy) -> dict:
    return {
        **selectors.policy_settings(policy),
        "version": policy.version,
        "updated_by": policy.updated_by.username if policy.updated_by else None,
        "updated_at": policy.updated_at,
    }


class ContentTrustPolicyView(APIView):
    """The content-trust policy: anyone may read it, admins change it."""

    def get_permissions(self) -> list:
        return [IsAuthenticated()] if self.request.method == "GET" else [IsAdmin()]

    @extend_schema(responses=PolicyReadSerializer)
    def get(self, request: Request) -> Response:
        return Response(policy_data(selectors.policy_get()))

    @extend_schema(request=PolicySerializer, responses=PolicyReadSerializer)
    def put(self, request: Request) -> Response:
        data = PolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy, changed = services.policy_update(
            actor=request.user,
            enabled=data.validated_data["enabled"],
            mode=data.validated_data["mode"],
            signing_team_names=data.validated_data["signing_teams"],
            allow_repos=data.validated_data["allow_repos"],
        )
        return Response({**policy_data(policy), "changed": changed})


class EvaluateRequestSerializer(serializers.Serializer):
    image = serializers.CharField(max_length=512)


class SignerSerializer(serializers.Serializer):
    username = serializers.CharField()
    key_id = serializers.CharField()
    role = serializers.CharField()


class TeamResultSerializer(serializers.Serializer):
    team = serializers.CharField()
    satisfied = serializers.BooleanField()
    signers = SignerSerializer(many=True)


class EvaluationSerializer(serializers.Serializer):
    image = serializers.CharField()
    gun = serializers.CharField()
    tag = serializers.CharField(allow_null=True)
    digest = serializers.CharField(allow_null=True)
    decision = serializers.ChoiceField(choices=["allowed", "denied", "not_enforced"])
    allowed = serializers.BooleanField()
    mode = serializers.CharField()
    root_pinned = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    teams = TeamResultSerializer(many=True)


class EvaluateView(APIView):
    """Would this image pass the content-trust policy, and why?"""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=EvaluateRequestSerializer,
        responses={
            200: EvaluationSerializer,
            503: OpenApiResponse(
                inline_serializer("Unavailable", {"detail": serializers.CharField()}),
                description="Notary cannot be reached: nothing can be verified.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = EvaluateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            evaluation = services.image_evaluate(image=data.validated_data["image"])
        except NotaryUnavailable as error:
            raise ServiceUnavailable(
                f"Notary cannot be reached, so nothing is verified: {error}"
            ) from error
        return Response(evaluation.to_json())
