"""``/api/v1/policy/`` (the whole policy, its preview and its versions),
``/api/v1/policy/content-trust/``, ``/api/v1/policy/evaluate/`` and the Kubernetes
admission webhook under ``/api/v1/admission/``."""

import re
import urllib.parse

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, generics, permissions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.typing import AuthenticatedRequest
from gatehouse.api import DateTimeField, IsAdmin, ModelSerializer
from policy import admission, evaluation, explanations, rules, selectors, services
from policy.models import AdmissionDecision, ContentTrustPolicy, PolicyVersion
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
    updated_at = DateTimeField(allow_null=True)


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


# --- The whole policy: /api/v1/policy/ ----------------------------------------------------

# What a read gives beside the document: a client may send it back as it came.
READ_ONLY_FIELDS = ("updated_by", "updated_at", "changed")
IF_MATCH = re.compile(r'\A(?:"(\d{1,18})"|(\d{1,18}))\Z')  # "5", or a bare 5


class DocumentQuotaSerializer(serializers.Serializer):
    team = serializers.CharField()
    count = serializers.IntegerField(min_value=1, max_value=rules.MAX_COUNT, default=1)


class DocumentRequirementSerializer(serializers.Serializer):
    match = serializers.ChoiceField(
        choices=rules.MATCHES,
        default=rules.ALL,
        help_text="all: every team's quota; any: one team's.",
    )
    teams = DocumentQuotaSerializer(
        many=True, help_text=f"At most {rules.MAX_TEAMS}; none: trust data alone suffices."
    )


class DefaultRuleSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=rules.RULE_MODES)
    require = DocumentRequirementSerializer()


class RuleSerializer(serializers.Serializer):
    name = serializers.RegexField(rules.RULE_NAME, help_text="Unique; not default.")
    images = serializers.ListField(
        child=serializers.CharField(),
        max_length=rules.MAX_PATTERNS,
        help_text="Image patterns (* and ?); empty: every image.",
    )
    namespaces = serializers.ListField(
        child=serializers.CharField(),
        max_length=rules.MAX_PATTERNS,
        help_text="Kubernetes namespaces or patterns; empty: every namespace and none.",
    )
    mode = serializers.ChoiceField(choices=rules.RULE_MODES)
    require = DocumentRequirementSerializer()


class PolicyDocumentSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="Off: nothing is enforced anywhere.")
    default = DefaultRuleSerializer(help_text="What applies where no rule's scope matches.")
    rules = RuleSerializer(
        many=True,
        help_text=f"At most {rules.MAX_RULES}. The most specific scope wins; a tie goes to "
        "the rule listed first.",
    )


class PolicyWriteSerializer(PolicyDocumentSerializer):
    version = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text='The version the change was made to; or send If-Match: "<version>".',
    )


class PolicyDocumentReadSerializer(PolicyDocumentSerializer):
    version = serializers.IntegerField(help_text="Also the ETag.")
    updated_by = serializers.CharField(allow_null=True)
    updated_at = DateTimeField(allow_null=True)


class PolicyChangeSerializer(PolicyDocumentReadSerializer):
    changed = serializers.ListField(
        child=serializers.CharField(),
        help_text="The fields that changed, dotted (rules.prod.require); empty: none did.",
    )


class StaleSerializer(serializers.Serializer):
    detail = serializers.CharField()
    version = serializers.IntegerField(help_text="The version the policy is at.")


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = (
        'Say which version your change was made to: send If-Match: "<version>" (the ETag of '
        "GET /api/v1/policy/) or a version field in the body."
    )
    default_code = "precondition_required"


IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='The ETag the change was made to, "<version>"; or a version field in the '
    "body. One of them is required (428).",
)
WRITE_RESPONSES = {
    200: PolicyChangeSerializer,
    400: OpenApiResponse(
        description="Keyed by the path of each field that is wrong: rules[0].images[1]."
    ),
    409: OpenApiResponse(StaleSerializer, description="The policy changed since that version."),
    428: OpenApiResponse(description="Neither If-Match nor a version was given."),
}


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def policy_document_data(row: ContentTrustPolicy) -> dict:
    return {
        "version": row.version,
        **rules.policy_document(selectors.policy_of(row)),
        "updated_by": row.updated_by.username if row.updated_by else None,
        "updated_at": row.updated_at,
    }


def _expected_version(request: Request) -> int:
    """The version the writer read, from ``If-Match`` or the body's ``version``."""
    header = request.headers.get("If-Match")
    given = request.data.get("version")
    from_header = from_body = None
    if header is not None:
        match = IF_MATCH.match(header.strip())
        if match is None:
            raise exceptions.ValidationError(
                {"If-Match": ['The ETag of GET /api/v1/policy/, as it was given: "<version>".']}
            )
        from_header = int(match[1] or match[2])
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int) or given < 0:
            raise exceptions.ValidationError(
                {"version": ["The version the change was made to: a whole number."]}
            )
        from_body = given
    if from_header is not None and from_body is not None and from_header != from_body:
        raise exceptions.ValidationError(
            {
                "version": [
                    f'The body says version {from_body} and If-Match "{from_header}": give '
                    "one, or the same in both."
                ]
            }
        )
    expected = from_header if from_header is not None else from_body
    if expected is None:
        raise PreconditionRequired()
    return expected


def _written(row: ContentTrustPolicy, changed: list[str]) -> Response:
    return Response({**policy_document_data(row), "changed": changed}, headers=_etag(row.version))


def _stale(error: services.StaleVersion) -> Response:
    return Response(
        {"detail": str(error), "version": error.current}, status=409, headers=_etag(error.current)
    )


def _draft(data: dict) -> dict:
    return {key: value for key, value in data.items() if key not in READ_ONLY_FIELDS}


class PolicyView(APIView):
    """The whole policy, the switch, the default rule and the ordered rules, as one
    document (``policy.rules``). Anyone may read it, admins replace it; a write names the
    version it was made to, so it cannot silently undo someone else's."""

    def get_permissions(self) -> list:
        return [IsAuthenticated()] if self.request.method == "GET" else [IsAdmin()]

    @extend_schema(responses=PolicyDocumentReadSerializer)
    def get(self, request: Request) -> Response:
        row = selectors.policy_get()
        return Response(policy_document_data(row), headers=_etag(row.version))

    @extend_schema(
        request=PolicyWriteSerializer, parameters=[IF_MATCH_PARAMETER], responses=WRITE_RESPONSES
    )
    def put(self, request: AuthenticatedRequest) -> Response:
        expected = _expected_version(request)
        policy = services.policy_checked(_draft(request.data))
        try:
            row, changed = services.policy_replace(
                actor=request.user, policy=policy, expected_version=expected
            )
        except services.StaleVersion as error:
            return _stale(error)
        return _written(row, changed)


PREVIEW_DECISION = inline_serializer(
    "PreviewDecision", {"decision": serializers.CharField(), "rule": serializers.CharField()}
)
PREVIEW_CHANGE = inline_serializer(
    "PreviewChange",
    {
        "image": serializers.CharField(),
        "namespace": serializers.CharField(allow_null=True),
        "source": serializers.ChoiceField(choices=["admission", "signed_tag"]),
        "before": PREVIEW_DECISION,
        "after": PREVIEW_DECISION,
        "occurrences": serializers.IntegerField(),
        "unread": serializers.BooleanField(
            help_text="Its trust data was never read: judged as unsigned."
        ),
    },
    many=True,
)


class PreviewSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    images = serializers.IntegerField(help_text="Images recorded, each in its namespace.")
    occurrences = serializers.IntegerField(help_text="How often they were seen.")
    judged = serializers.IntegerField(help_text="Images whose rule the draft changes.")
    newly_denied = serializers.IntegerField(help_text="Occurrences the draft would deny.")
    newly_allowed = serializers.IntegerField(help_text="Occurrences the draft would allow.")
    denied = PREVIEW_CHANGE
    allowed = PREVIEW_CHANGE


class PolicyPreviewView(APIView):
    """What a draft policy would change, judged by the images admission reviewed in the
    last ``days`` and the signed tags of the managed repositories. Nothing is saved."""

    permission_classes = [IsAdmin]

    @extend_schema(
        request=PolicyDocumentSerializer,
        parameters=[
            OpenApiParameter(
                "days",
                int,
                description=f"How far back to look, 1 to {services.MAX_PREVIEW_DAYS} "
                f"(default {services.PREVIEW_DAYS}).",
            )
        ],
        responses=PreviewSerializer,
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        text = request.query_params.get("days", str(services.PREVIEW_DAYS))
        if not text.isdigit() or len(text) > 3:
            raise exceptions.ValidationError(
                {"days": [f"A preview looks back 1 to {services.MAX_PREVIEW_DAYS} days."]}
            )
        days = int(text)
        result = services.policy_preview(
            draft=services.policy_checked(_draft(request.data)), days=days
        )
        return Response({**result.to_json(), "days": days})


class PolicyVersionSerializer(ModelSerializer):
    actor = serializers.SlugRelatedField[User](
        slug_field="username", read_only=True, help_text="null: Gatehouse itself."
    )
    changed = serializers.ListField(
        child=serializers.CharField(), help_text="The fields that changed, dotted."
    )

    class Meta:
        model = PolicyVersion
        fields = ["number", "actor", "created_at", "changed"]
        read_only_fields = fields


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted, rules by name: rules.prod.require.")
    before = serializers.CharField(allow_null=True, help_text="null: the field was added.")
    after = serializers.CharField(allow_null=True, help_text="null: the field was removed.")


class PolicyVersionDetailSerializer(PolicyVersionSerializer):
    policy = serializers.SerializerMethodField()
    diff = serializers.SerializerMethodField()

    class Meta(PolicyVersionSerializer.Meta):
        fields = [*PolicyVersionSerializer.Meta.fields, "policy", "diff"]
        read_only_fields = fields

    @extend_schema_field(PolicyDocumentSerializer)
    def get_policy(self, version: PolicyVersion) -> dict:
        """The policy as this version made it, its fields in the document's order."""
        return rules.policy_document(selectors.policy_stored(version.policy))

    @extend_schema_field(FieldChangeSerializer(many=True))
    def get_diff(self, version: PolicyVersion) -> list[dict]:
        """Against the version before (version 1: against a new installation's policy)."""
        return [
            {"field": change.field, "before": change.before, "after": change.after}
            for change in selectors.policy_version_diff(version)
        ]


class PolicyVersionListView(generics.ListAPIView):
    """Every version of the policy, newest first: who made it, when, which fields."""

    permission_classes = [IsAuthenticated]
    serializer_class = PolicyVersionSerializer

    def get_queryset(self) -> QuerySet[PolicyVersion]:
        return selectors.policy_version_list()


class PolicyVersionDetailView(generics.RetrieveAPIView):
    """One version: the policy it made and what it changed, field by field."""

    permission_classes = [IsAuthenticated]
    serializer_class = PolicyVersionDetailSerializer
    lookup_field = "number"

    def get_queryset(self) -> QuerySet[PolicyVersion]:
        return selectors.policy_versions()


class PolicyRevertView(APIView):
    """Make an earlier version the policy again; the revert is itself a new version."""

    permission_classes = [IsAdmin]

    @extend_schema(
        request=inline_serializer(
            "PolicyRevert",
            {"version": serializers.IntegerField(min_value=0, required=False)},
        ),
        parameters=[IF_MATCH_PARAMETER],
        responses={**WRITE_RESPONSES, 404: OpenApiResponse(description="No such version.")},
    )
    def post(self, request: AuthenticatedRequest, number: int) -> Response:
        if selectors.policy_version(number) is None:
            raise exceptions.NotFound(f"There is no version {number}.")
        expected = _expected_version(request)
        try:
            row, changed = services.policy_revert(
                actor=request.user, number=number, expected_version=expected
            )
        except services.StaleVersion as error:
            return _stale(error)
        return _written(row, changed)


class EvaluateRequestSerializer(serializers.Serializer):
    # Whitespace around the image is dropped by the parser, as admission's images are.
    image = serializers.CharField(max_length=512, trim_whitespace=False)
    namespace = serializers.RegexField(
        rules.NAMESPACE,
        required=False,
        allow_null=True,
        help_text="The Kubernetes namespace it would run in; without one, only the rules "
        "for every namespace apply.",
        error_messages={"invalid": rules.NAMESPACE_INVALID},
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
    signed = serializers.IntegerField(
        allow_null=True, help_text="Distinct current members who did; null when redacted."
    )
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
            evaluation, identities = services.image_evaluation(
                image=data.validated_data["image"],
                namespace=data.validated_data.get("namespace") or None,
            )
        except NotaryUnavailable as error:
            raise ServiceUnavailable(
                f"Notary cannot be reached, so nothing is verified: {error}"
            ) from error
        evaluation, redacted, steps = explanations.evaluation_explained(
            viewer=request.user, evaluation=evaluation, identities=identities
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
        return bool(user and user.is_authenticated and selectors.may_review_admission(user))


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


class AdmissionDecisionSerializer(ModelSerializer):
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
        text = admission.webhook_configuration_yaml(
            mode=query.validated_data["mode"],
            base_url=query.validated_data["url"],
            ca_bundle=_ca_bundle(),
            custom_resources=tuple(query.validated_data["resource"]),
        )
        return HttpResponse(text, content_type="application/yaml")
