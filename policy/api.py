"""``/api/v1/policy/content-trust/``, ``/api/v1/policy/evaluate/`` and the Kubernetes
admission webhook under ``/api/v1/admission/``."""

import urllib.parse

import yaml
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, generics, permissions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.typing import AuthenticatedRequest
from gatehouse.api import IsAdmin
from policy import admission, evaluation, explanations, selectors, services
from policy.models import AdmissionDecision, ContentTrustPolicy
from policy.redaction import explanation_json
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
        # The service checks each pattern (its length too), in the console's words.
        child=serializers.CharField(),
        max_length=services.MAX_ALLOW_REPOS,
    )
    exempt_namespaces = serializers.ListField(
        child=serializers.CharField(max_length=63),
        max_length=services.MAX_EXEMPT_NAMESPACES,
        required=False,
        help_text="Kubernetes namespaces admission allows unchecked; kept as is when omitted.",
    )


class PolicyReadSerializer(PolicySerializer):
    exempt_namespaces = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField()
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


def policy_data(policy: ContentTrustPolicy) -> dict:
    return {
        **selectors.policy_settings(policy),
        "exempt_namespaces": list(policy.exempt_namespaces),
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
    def put(self, request: AuthenticatedRequest) -> Response:
        data = PolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy, changed = services.policy_update(
            actor=request.user,
            enabled=data.validated_data["enabled"],
            mode=data.validated_data["mode"],
            signing_team_names=data.validated_data["signing_teams"],
            allow_repos=data.validated_data["allow_repos"],
            exempt_namespaces=data.validated_data.get("exempt_namespaces"),
        )
        return Response({**policy_data(policy), "changed": changed})


class EvaluateRequestSerializer(serializers.Serializer):
    # Whitespace around the image is dropped by the parser, as admission's images are.
    image = serializers.CharField(max_length=512, trim_whitespace=False)


class SignerSerializer(serializers.Serializer):
    username = serializers.CharField()
    key_id = serializers.CharField(help_text="As `notary key list` shows it.")
    role = serializers.CharField(help_text="The signer's own role, targets/<name>.")


class NotCountedSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=[
            evaluation.NEVER_SIGNED,
            evaluation.RELEASES_ONLY,
            evaluation.NOT_IN_TEAM,
            evaluation.DEACTIVATED,
            evaluation.KEY_REVOKED,
            evaluation.KEY_EXPIRED,
            evaluation.KEY_NOT_YET_VALID,
            evaluation.KEY_NOT_SIGNING,
            evaluation.NOT_OWN_KEY,
            evaluation.NOT_OWN_ROLE,
            evaluation.REPLAYED,
            evaluation.ROOT_NOT_PINNED,
        ]
    )
    detail = serializers.CharField()
    username = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    key_id = serializers.CharField(allow_null=True, help_text="As `notary key list` shows it.")


class TeamResultSerializer(serializers.Serializer):
    team = serializers.CharField(allow_null=True, help_text="null when the answer is redacted.")
    satisfied = serializers.BooleanField()
    signers = SignerSerializer(many=True)
    not_counted = NotCountedSerializer(many=True)


class NextStepSerializer(serializers.Serializer):
    reason = serializers.CharField(
        help_text="A reason code: those of `not_counted`, or no_trust_data, trust_invalid, "
        "unknown_tag, unknown_digest, role_gone, tag_changed."
    )
    why = serializers.CharField()
    step = serializers.CharField()


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
    redacted = serializers.BooleanField(
        help_text="The caller may not see the repository (only admins and members of its "
        "signer teams may): the decision, digest and reason codes are given, but no "
        "username, role, key or team name."
    )
    next_steps = NextStepSerializer(
        many=True,
        help_text="Why it fails and what to do next, one per reason (empty when it passes).",
    )


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
    def post(self, request: AuthenticatedRequest) -> Response:
        data = EvaluateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            evaluation = services.image_evaluate(image=data.validated_data["image"])
        except NotaryUnavailable as error:
            raise ServiceUnavailable(
                f"Notary cannot be reached, so nothing is verified: {error}"
            ) from error
        evaluation, redacted, steps = explanations.evaluation_explained(
            viewer=request.user, evaluation=evaluation
        )
        body = explanation_json(evaluation, redacted=redacted)
        body["next_steps"] = [step.to_json() for step in steps]
        return Response(body)


# --- Kubernetes admission ----------------------------------------------------------------


class CanReviewAdmission(permissions.BasePermission):
    """The Kubernetes API server's account: ``policy.review_admission`` (admins have it)."""

    message = "Only an account with the permission policy.review_admission may ask for reviews."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("policy.review_admission"))


class _AdmissionView(APIView):
    permission_classes = [CanReviewAdmission]
    mutate = False

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="An admission.k8s.io/v1 AdmissionReview with the response.",
            ),
            400: OpenApiResponse(
                inline_serializer("MalformedReview", {"detail": serializers.CharField()}),
                description="Not an admission.k8s.io/v1 AdmissionReview.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            body = request.body  # read as is: the review is parsed and checked by admission
        except RequestDataTooBig as error:
            raise exceptions.ParseError("The review is larger than the server accepts.") from error
        try:
            answer = services.admission_review(body=body, mutate=self.mutate)
        except admission.MalformedReview as error:
            raise exceptions.ParseError(str(error)) from error
        return Response(answer)


class AdmissionValidateView(_AdmissionView):
    """Kubernetes validating admission webhook: allow or deny a workload by the policy."""

    mutate = False


class AdmissionMutateView(_AdmissionView):
    """Kubernetes mutating admission webhook: as validate, and pin each verified tag to
    the signed digest with a JSON Patch."""

    mutate = True


class AdmissionDecisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdmissionDecision
        fields = [
            "id",
            "created_at",
            "uid",
            "webhook",
            "operation",
            "namespace",
            "kind",
            "name",
            "allowed",
            "failing",
            "message",
            "pinned",
        ]
        read_only_fields = fields


class AdmissionDecisionListView(generics.ListAPIView):
    """The admission decision log, newest first; admins only (it names namespaces,
    workloads and why they failed)."""

    permission_classes = [IsAdmin]
    serializer_class = AdmissionDecisionSerializer

    def get_queryset(self) -> QuerySet[AdmissionDecision]:
        return selectors.admission_decisions()


class ConfigurationError(exceptions.APIException):
    status_code = 500
    default_detail = "Gatehouse is misconfigured."
    default_code = "misconfigured"


class WebhookConfigurationQuerySerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=admission.WEBHOOK_MODES)
    url = serializers.URLField(
        max_length=2000, help_text="Gatehouse's https base URL as the API server reaches it."
    )
    resource = serializers.ListField(
        child=serializers.CharField(max_length=400),
        max_length=admission.MAX_CUSTOM_RESOURCES,
        required=False,
        default=list,
        help_text=(
            "A custom kind to register too, as <API group>/<version>/<resource> "
            "(argoproj.io/v1alpha1/rollouts); repeat for more."
        ),
    )

    def validate_url(self, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme != "https":
            raise serializers.ValidationError("The API server calls webhooks over https only.")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise serializers.ValidationError(
                "A webhook URL has no user, query or fragment: give Gatehouse's base URL."
            )
        return value

    def validate_resource(self, value: list[str]) -> list[tuple[str, str, str]]:
        try:
            return [admission.parse_custom_resource(text) for text in value]
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from error


def _ca_bundle() -> bytes | None:
    path = settings.GATEHOUSE_TLS_CA_FILE
    if not path:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise ConfigurationError(
            f"GATEHOUSE_TLS_CA_FILE ({path}) cannot be read: {error.strerror}."
        ) from error


class WebhookConfigurationView(APIView):
    """The Validating- or MutatingWebhookConfiguration to ``kubectl apply``, as YAML."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[
            OpenApiParameter("mode", str, enum=list(admission.WEBHOOK_MODES), required=True),
            OpenApiParameter("url", str, required=True, description="Gatehouse's https base URL."),
            OpenApiParameter(
                "resource",
                str,
                many=True,
                description=(
                    "A custom kind whose objects carry a pod template at spec.template.spec "
                    "or spec.jobTemplate.spec.template.spec, to register too: "
                    "<API group>/<version>/<resource>, e.g. argoproj.io/v1alpha1/rollouts. "
                    "Repeatable."
                ),
            ),
        ],
        responses={
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.STR, description="The webhook configuration, ready to apply."
            ),
            400: OpenApiResponse(
                description="A bad mode, a URL that is not https or a resource not understood."
            ),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        query = WebhookConfigurationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        mode, url = query.validated_data["mode"], query.validated_data["url"]
        configuration = admission.webhook_configuration(
            mode=mode,
            base_url=url,
            ca_bundle=_ca_bundle(),
            custom_resources=query.validated_data["resource"],
        )
        text = (
            f"# Gatehouse content trust: {mode} admission webhook.\n"
            "# Apply with: kubectl apply -f <this file>\n"
            + yaml.safe_dump(configuration, sort_keys=False, default_flow_style=False)
        )
        return HttpResponse(text, content_type="application/yaml")
