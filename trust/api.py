"""``/api/v1/repositories/``, ``/api/v1/jobs/``, ``/api/v1/trust/root/`` and
``/api/v1/trust/pins/``.

Long work answers 202 with a link to its job, as Pulp does.
"""

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gatehouse.api import Conflict, IsAdmin
from trust import custody, pins, selectors
from trust.models import Job, Repository, RootKeyPin
from trust.services import repositories, root_key, sync_requests

GUN_MAX = 255
TEAM_NAMES = serializers.ListField(
    child=serializers.CharField(max_length=64), max_length=100, required=False
)


def job_link(request: Request, job: Job) -> dict:
    return {"id": job.pk, "url": request.build_absolute_uri(reverse("job-detail", args=[job.pk]))}


class JobSerializer(serializers.ModelSerializer):
    repository = serializers.PrimaryKeyRelatedField(read_only=True)
    caused_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="job-detail")

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "repository",
            "gun",
            "caused_by",
            "cause",
            "attempts",
            "error",
            "result",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class DelegationKeySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The key ID `notary key list` shows.")
    username = serializers.CharField(allow_null=True)
    label = serializers.CharField()


class DelegationSerializer(serializers.Serializer):
    role = serializers.CharField()
    keys = DelegationKeySerializer(many=True)


class RepositorySerializer(serializers.ModelSerializer):
    signer_teams = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    delegations = serializers.SerializerMethodField()
    root_key_id = serializers.SerializerMethodField()
    latest_job = serializers.SerializerMethodField()

    class Meta:
        model = Repository
        fields = [
            "id",
            "gun",
            "state",
            "signer_teams",
            "adopted",
            "delegations",
            "root_key_id",
            "last_synced_at",
            "drift",
            "drift_checked_at",
            "latest_job",
            "created_at",
        ]
        read_only_fields = fields

    def _details(self, repository: Repository) -> selectors.RepositoryDetails:
        """Read once per response for every repository in it: the page, or the one."""
        details = self.context.get("repository_details")
        if details is None or repository.pk not in details.delegations:
            shown = (
                self.parent.instance
                if isinstance(self.parent, serializers.ListSerializer)
                else [repository]
            )
            details = selectors.repository_details(list(shown))
            self.context["repository_details"] = details
        return details

    @extend_schema_field(DelegationSerializer(many=True))
    def get_delegations(self, repository: Repository) -> list[dict]:
        return self._details(repository).delegations[repository.pk]

    def get_root_key_id(self, repository: Repository) -> str | None:
        return self._details(repository).root_key_id(repository)

    @extend_schema_field(JobSerializer(allow_null=True))
    def get_latest_job(self, repository: Repository) -> dict | None:
        job = self._details(repository).latest_jobs.get(repository.pk)
        return JobSerializer(job, context=self.context).data if job else None


class RepositoryCreateSerializer(serializers.Serializer):
    gun = serializers.CharField(max_length=GUN_MAX)
    signer_teams = TEAM_NAMES


class RepositoryBulkSerializer(serializers.Serializer):
    guns = serializers.ListField(
        child=serializers.CharField(max_length=GUN_MAX), min_length=1, max_length=1000
    )
    signer_teams = TEAM_NAMES


class RepositoryAdoptSerializer(serializers.Serializer):
    gun = serializers.CharField(max_length=GUN_MAX)
    targets_key = serializers.CharField(max_length=20000, trim_whitespace=False)
    passphrase = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, trim_whitespace=False, write_only=True
    )
    signer_teams = TEAM_NAMES


class RepositoryUpdateSerializer(serializers.Serializer):
    signer_teams = serializers.ListField(child=serializers.CharField(max_length=64), max_length=100)


class RepositoryFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", label="Part of the GUN")
    team = django_filters.CharFilter(field_name="signer_teams__name", label="Signer team")

    class Meta:
        model = Repository
        fields = ["state"]

    def filter_search(
        self, queryset: QuerySet[Repository], name: str, value: str
    ) -> QuerySet[Repository]:
        return selectors.repositories_matching(queryset, value)


def accepted(request: Request, repository: Repository, job: Job) -> Response:
    data = RepositorySerializer(repository, context={"request": request}).data
    data["job"] = job_link(request, job)
    return Response(data, status=status.HTTP_202_ACCEPTED)


class RepositoryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Repositories Gatehouse manages on Notary. Writes are for admins."""

    queryset = Repository.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = RepositorySerializer
    filterset_class = RepositoryFilter

    def get_queryset(self) -> QuerySet[Repository]:
        return selectors.repository_list(viewer=self.request.user)

    def get_permissions(self) -> list:
        if self.action in {"list", "retrieve"}:
            return [IsAuthenticated()]
        return [IsAdmin()]

    @extend_schema(request=RepositoryCreateSerializer, responses={202: RepositorySerializer})
    def create(self, request: Request) -> Response:
        data = RepositoryCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        repository, job = repositories.repository_create(
            actor=request.user,
            gun=data.validated_data["gun"],
            signer_team_names=data.validated_data.get("signer_teams"),
        )
        return accepted(request, repository, job)

    @extend_schema(request=RepositoryUpdateSerializer, responses={202: RepositorySerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        repository = self.get_object()
        data = RepositoryUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = repositories.repository_update_signer_teams(
            actor=request.user,
            repository=repository,
            signer_team_names=data.validated_data["signer_teams"],
        )
        return accepted(request, repository, job)

    @extend_schema(responses={202: RepositorySerializer})
    def destroy(self, request: Request, pk: str) -> Response:
        repository = self.get_object()
        job = repositories.repository_delete(actor=request.user, repository=repository)
        return accepted(request, repository, job)

    @extend_schema(request=None, responses={202: RepositorySerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk: str) -> Response:
        repository = self.get_object()
        job = sync_requests.repository_sync_request(
            repository=repository, actor=request.user, cause="sync asked for", delay=0
        )
        return accepted(request, repository, job)

    @extend_schema(request=RepositoryAdoptSerializer, responses={202: RepositorySerializer})
    @action(detail=False, methods=["post"])
    def adopt(self, request: Request) -> Response:
        data = RepositoryAdoptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        repository, job = repositories.repository_adopt(
            actor=request.user,
            gun=data.validated_data["gun"],
            targets_key=data.validated_data["targets_key"],
            passphrase=data.validated_data.get("passphrase", ""),
            signer_team_names=data.validated_data.get("signer_teams"),
        )
        return accepted(request, repository, job)

    @extend_schema(
        request=RepositoryBulkSerializer,
        responses={
            202: inline_serializer(
                "BulkCreated",
                {
                    "repositories": RepositorySerializer(many=True),
                    "jobs": serializers.ListField(child=serializers.DictField()),
                    "summary": serializers.DictField(),
                },
            )
        },
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        data = RepositoryBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = repositories.repositories_create_bulk(
            actor=request.user,
            guns=data.validated_data["guns"],
            signer_team_names=data.validated_data.get("signer_teams"),
        )
        created = [repository for repository, _ in result.created]
        return Response(
            {
                "repositories": RepositorySerializer(
                    created, many=True, context={"request": request}
                ).data,
                "jobs": [job_link(request, job) for _, job in result.created],
                "summary": {
                    "requested": len(data.validated_data["guns"]),
                    "created": len(result.created),
                    "skipped": result.skipped,
                },
            },
            status=status.HTTP_202_ACCEPTED,
        )


class JobFilter(django_filters.FilterSet):
    class Meta:
        model = Job
        fields = ["status", "repository", "kind"]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Notary work and how it went. Admins see all jobs; others those of their repositories."""

    queryset = Job.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self) -> QuerySet[Job]:
        return selectors.job_list(viewer=self.request.user)


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
        key_id = selectors.root_key_id()
        return Response(
            {
                "root_key_id": key_id,
                "message": None if key_id else custody.ROOT_KEY_MISSING,
                "exported": selectors.root_key_exported(),
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
    def post(self, request: Request) -> HttpResponse:
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


class RootKeyPinSerializer(serializers.ModelSerializer):
    key_ids = serializers.ListField(child=serializers.CharField())
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
    def create(self, request: Request) -> Response:
        data = RootKeyPinCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pin = pins.root_key_pin_create(actor=request.user, **data.validated_data)
        return Response(RootKeyPinSerializer(pin).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RootKeyPinUpdateSerializer, responses={200: RootKeyPinSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
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
    def destroy(self, request: Request, pk: str) -> Response:
        pins.root_key_pin_delete(actor=request.user, pin=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
