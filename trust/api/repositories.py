"""``/api/v1/repositories/`` and ``/api/v1/jobs/``.

Long work answers 202 with a link to its job, as Pulp does.
"""

from collections.abc import Iterable
from functools import cached_property
from typing import cast

import django_filters
from django import forms
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.typing import AuthenticatedRequest
from gatehouse.api import IdentityLinkField, IsAdmin, ModelSerializer
from trust import selectors
from trust.models import Job, JobEvent, Repository
from trust.services import repositories, sync_requests

GUN_MAX = 255
TEAM_NAMES = serializers.ListField(
    child=serializers.CharField(max_length=64), max_length=100, required=False
)


def job_link(request: Request, job: Job) -> dict:
    return {"id": job.pk, "url": request.build_absolute_uri(reverse("job-detail", args=[job.pk]))}


class JobSerializer(ModelSerializer):
    repository = serializers.PrimaryKeyRelatedField[Repository](read_only=True)
    caused_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    url = IdentityLinkField(view_name="job-detail")

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


class JobEventSerializer(ModelSerializer):
    class Meta:
        model = JobEvent
        fields = ["status", "at", "attempt", "detail"]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    """A job with its history: queued, started, retried with the error, finished."""

    events = JobEventSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "events"]
        read_only_fields = fields


class DelegationKeySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The key ID `notary key list` shows.")
    username = serializers.CharField(allow_null=True)
    # The stubs take a field named "label" for Field.label (djangorestframework-stubs#78).
    label = serializers.CharField()  # type: ignore[assignment]


class DelegationSerializer(serializers.Serializer):
    role = serializers.CharField()
    keys = DelegationKeySerializer(many=True)


class RepositorySerializer(ModelSerializer):
    signer_teams = serializers.SerializerMethodField()
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
                # The list being rendered: the page of repositories, never None.
                cast(Iterable[Repository], self.parent.instance)
                if isinstance(self.parent, serializers.ListSerializer)
                else [repository]
            )
            details = selectors.repository_details(list(shown))
            self.context["repository_details"] = details
        return details

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_signer_teams(self, repository: Repository) -> list[str]:
        return self._details(repository).signer_teams[repository.pk]

    @extend_schema_field(DelegationSerializer(many=True))
    def get_delegations(self, repository: Repository) -> list[dict]:
        return self._details(repository).delegations[repository.pk]

    def get_root_key_id(self, repository: Repository) -> str | None:
        return self._details(repository).root_key_id(repository)

    @cached_property
    def _job_serializer(self) -> JobSerializer:
        """One for every repository shown: a serializer builds its fields anew for each
        instance, which cost more than the rows."""
        return JobSerializer(context=self.context)

    @extend_schema_field(JobSerializer(allow_null=True))
    def get_latest_job(self, repository: Repository) -> dict | None:
        job = self._details(repository).latest_jobs.get(repository.pk)
        return self._job_serializer.to_representation(job) if job else None


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

    request: AuthenticatedRequest  # every action needs a signed-in user

    queryset = Repository.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = RepositorySerializer
    filterset_class = RepositoryFilter

    def get_queryset(self) -> QuerySet[Repository]:
        if self.action in {"list", "retrieve"}:
            return selectors.repositories_shown(viewer=self.request.user)
        return selectors.repository_list(viewer=self.request.user)

    def get_permissions(self) -> list:
        if self.action in {"list", "retrieve"}:
            return [IsAuthenticated()]
        return [IsAdmin()]

    @extend_schema(request=RepositoryCreateSerializer, responses={202: RepositorySerializer})
    def create(self, request: AuthenticatedRequest) -> Response:
        data = RepositoryCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        repository, job = repositories.repository_create(
            actor=request.user,
            gun=data.validated_data["gun"],
            signer_team_names=data.validated_data.get("signer_teams"),
        )
        return accepted(request, repository, job)

    @extend_schema(request=RepositoryUpdateSerializer, responses={202: RepositorySerializer})
    def partial_update(self, request: AuthenticatedRequest, pk: str) -> Response:
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
    def destroy(self, request: AuthenticatedRequest, pk: str) -> Response:
        repository = self.get_object()
        job = repositories.repository_delete(actor=request.user, repository=repository)
        return accepted(request, repository, job)

    @extend_schema(request=None, responses={202: RepositorySerializer})
    @action(detail=True, methods=["post"])
    def sync(self, request: AuthenticatedRequest, pk: str) -> Response:
        repository = self.get_object()
        job = sync_requests.repository_sync_request(
            repository=repository, actor=request.user, cause="sync asked for", delay=0
        )
        return accepted(request, repository, job)

    @extend_schema(request=RepositoryAdoptSerializer, responses={202: RepositorySerializer})
    @action(detail=False, methods=["post"])
    def adopt(self, request: AuthenticatedRequest) -> Response:
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
    def bulk(self, request: AuthenticatedRequest) -> Response:
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


class IdsFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    """``?id=3,5,9``: the console follows the jobs it shows in one request. Whole numbers
    only: a number filter's decimals would make ``?id=3.5`` job 3."""

    field_class = forms.IntegerField


class JobFilter(django_filters.FilterSet):
    id = IdsFilter(field_name="id", label="Job ids, separated by commas")

    class Meta:
        model = Job
        fields = ["id", "status", "repository", "kind"]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Notary work and how it went. Admins see all jobs; others those of their repositories."""

    request: AuthenticatedRequest  # every action needs a signed-in user

    queryset = Job.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = JobSerializer
    filterset_class = JobFilter

    def get_queryset(self) -> QuerySet[Job]:
        jobs = selectors.job_list(viewer=self.request.user)
        return jobs.prefetch_related("events") if self.action == "retrieve" else jobs

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer
