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
from policy import admission, evaluation, explanations, rules, selectors, services
from policy.models import AdmissionDecision, ContentTrustPolicy
from policy.redaction import explanation_json
from trust.notary.errors import NotaryUnavailable


class ServiceUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "Notary cannot be reached."
    default_code = "notary_unavailable"


class PolicySerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    mode = serializers.ChoiceField(choices=rules.RULE_MODES, help_text="The default rule's.")
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
        "version": policy.version,
        "updated_by": policy.updated_by.username if policy.updated_by else None,
        "updated_at": policy.updated_at,
    }


class ContentTrustPolicyView(APIView):
    """UCP's five settings of the policy: the default rule's mode and teams and the
    exemption rules. Anyone may read them, admins change them; a change here keeps every
    other rule (``/api/v1/policy/`` has the whole policy)."""

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
    namespace = serializers.RegexField(
        rules.NAMESPACE,
        required=False,
        allow_null=True,
        help_text="The Kubernetes namespace it would run in; without one, only the rules "
        "for every namespace apply.",
        error_messages={
            "invalid": "Not a namespace name: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit."
        },
    )


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
            evaluation.TOO_FEW,
        ]
    )
    detail = serializers.CharField()
    username = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    key_id = serializers.CharField(allow_null=True, help_text="As `notary key list` shows it.")


class TeamResultSerializer(serializers.Serializer):
    team = serializers.CharField(allow_null=True, help_text="null when the answer is redacted.")
    needed = serializers.IntegerField(help_text="Distinct current members who must sign.")
    signed = serializers.IntegerField(help_text="Distinct current members who did.")
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


class QuotaSerializer(serializers.Serializer):
    team = serializers.CharField(allow_null=True, help_text="null when the answer is redacted.")
    count = serializers.IntegerField(min_value=1, max_value=rules.MAX_COUNT)


class RequirementSerializer(serializers.Serializer):
    match = serializers.ChoiceField(choices=rules.MATCHES, default=rules.ALL)
    teams = QuotaSerializer(many=True)


class AppliedRuleSerializer(serializers.Serializer):
    name = serializers.CharField()
    position = serializers.IntegerField(allow_null=True, help_text="null: the default rule.")
    mode = serializers.ChoiceField(choices=rules.RULE_MODES)
    scope = inline_serializer(
        "RuleScope",
        {
            "images": serializers.ListField(child=serializers.CharField()),
            "namespaces": serializers.ListField(child=serializers.CharField()),
        },
    )
    require = RequirementSerializer()
    matched_namespace = serializers.CharField(allow_null=True)
    matched_image = serializers.CharField(allow_null=True)
    outranked = serializers.ListField(
        child=serializers.CharField(), help_text="Other rules that matched, by precedence."
    )
    why = serializers.CharField()


class EvaluationSerializer(serializers.Serializer):
    image = serializers.CharField()
    gun = serializers.CharField()
    tag = serializers.CharField(allow_null=True)
    digest = serializers.CharField(allow_null=True)
    namespace = serializers.CharField(allow_null=True)
    decision = serializers.ChoiceField(choices=["allowed", "denied", "not_enforced"])
    allowed = serializers.BooleanField()
    mode = serializers.ChoiceField(choices=rules.RULE_MODES, help_text="The applied rule's.")
    rule = AppliedRuleSerializer()
    match = serializers.ChoiceField(
        choices=rules.MATCHES, help_text="all: every team's quota; any: one team's."
    )
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
    """Would this image pass the content-trust policy, and why? The rule that applied and
    why it won, and for each team how many signers it needed, who signed and who did not
    count. ``GET ?image=&namespace=`` and ``POST`` answer alike."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[EvaluateRequestSerializer],
        responses={200: EvaluationSerializer},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return self._answer(request, request.query_params)

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
        return self._answer(request, request.data)

    def _answer(self, request: AuthenticatedRequest, given: object) -> Response:
        data = EvaluateRequestSerializer(data=given)
        data.is_valid(raise_exception=True)
        try:
            evaluation = services.image_evaluate(
                image=data.validated_data["image"],
                namespace=data.validated_data.get("namespace") or None,
            )
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
