"""The directory API (admins only): ``/api/v1/directory/`` (status), ``mappings/``,
``runs/`` and ``sync/``.

Views parse input, call one service or selector, and render the result.
"""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Team, User
from accounts.typing import AuthenticatedRequest
from directory import selectors, services
from directory.models import GroupMapping, Source, SyncRun
from directory.views import ldap_check
from gatehouse.api import IsAdmin, ModelSerializer

SOURCES = f"One of: {', '.join(Source.values)}."
GROUP = "LDAP: the group's DN or name (cn); OpenID Connect: a value of the groups claim."


@extend_schema_field(OpenApiTypes.STR)
class PlainChoiceField(serializers.ChoiceField):
    """A choice documented as a string whose help text names the choices, not as an enum:
    other endpoints have a ``source`` and a ``kind`` of other choices, and drf-spectacular
    would rename their enums to tell them apart."""


class ChangeSerializer(serializers.Serializer):
    kind = serializers.CharField(
        read_only=True, help_text="One of: deactivate, reactivate, profile, join, leave."
    )
    username = serializers.CharField(read_only=True)
    team = serializers.CharField(
        read_only=True, help_text="The team joined or left; blank for the other kinds."
    )
    detail = serializers.CharField(
        read_only=True,
        help_text="Why a user is deactivated, or which of their details change; else blank.",
    )


@extend_schema_field(ChangeSerializer(many=True))
class ChangesField(serializers.Field):
    """A run's changes as ``ChangeSerializer(many=True)`` gives them, each stored change a
    dict of strings: a key it lacks left out, None kept, anything else as a string. Written
    out, since a list of runs has a hundred changes or more, each through four fields."""

    names = tuple(ChangeSerializer().fields)  # in their order

    def to_representation(self, value: list[dict]) -> list[dict]:
        names = self.names
        return [
            {
                name: None if change[name] is None else str(change[name])
                for name in names
                if name in change
            }
            for change in value
        ]


class SyncRunSerializer(ModelSerializer):
    serializer_choice_field = PlainChoiceField  # for ``source``; the others are declared
    trigger = serializers.ChoiceField(choices=SyncRun.Trigger.choices, read_only=True)
    outcome = serializers.ChoiceField(choices=SyncRun.Outcome.choices, read_only=True)
    actor = serializers.SlugRelatedField[User](
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="The admin who asked for it; null for a scheduled sync or a mapping's.",
    )
    changes = ChangesField(
        read_only=True,
        help_text="What it changed (applied) or would change (dry run); empty when it could "
        "not read the directory or refused what it read.",
    )

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "source",
            "trigger",
            "actor",
            "started_at",
            "finished_at",
            "outcome",
            "people",
            "error",
            "changes",
        ]
        read_only_fields = fields
        extra_kwargs = {"source": {"help_text": SOURCES}}


class LdapStatusSerializer(serializers.Serializer):
    configured = serializers.BooleanField()
    url = serializers.CharField(help_text="GATEHOUSE_LDAP_URL; blank when not configured.")
    can_list = serializers.BooleanField(
        help_text="A sync is possible: a service account and a user base are configured."
    )
    sync_seconds = serializers.IntegerField(
        help_text="How often the worker syncs; 0: only when asked (or LDAP is off)."
    )
    reachable = serializers.BooleanField(
        help_text="LDAP answered a connection and the service account's bind just now; "
        "false when not configured."
    )
    error = serializers.CharField(help_text="Why it is not reachable; else blank.")


class OidcStatusSerializer(serializers.Serializer):
    configured = serializers.BooleanField()
    issuer = serializers.CharField(help_text="GATEHOUSE_OIDC_ISSUER; blank when not configured.")


class DirectoryStatusSerializer(serializers.Serializer):
    ldap = LdapStatusSerializer()
    oidc = OidcStatusSerializer()
    last_run = SyncRunSerializer(
        allow_null=True, help_text="The latest sync that was not a dry run; null before any."
    )
    last_applied = SyncRunSerializer(
        allow_null=True, help_text="The latest sync that applied its changes; null before any."
    )


class DirectoryStatusView(APIView):
    """What is configured, whether LDAP answers now, and how the latest syncs went."""

    permission_classes = [IsAdmin]

    @extend_schema(responses={200: DirectoryStatusSerializer})
    def get(self, request: Request) -> Response:
        state = selectors.directory_status()
        check = ldap_check() if state.ldap_url else None
        # The runs through one serializer (a serializer builds its fields for each instance),
        # each once: the latest run is often the latest applied one too.
        runs = {run.pk: run for run in (state.last_run, state.last_applied) if run is not None}
        shown = dict(zip(runs, SyncRunSerializer(list(runs.values()), many=True).data, strict=True))
        # As DirectoryStatusSerializer would give it: every value is already of its field's type.
        return Response(
            {
                "ldap": {
                    "configured": bool(state.ldap_url),
                    "url": state.ldap_url,
                    "can_list": state.can_list,
                    "sync_seconds": state.sync_seconds,
                    "reachable": check is not None and check.reachable,
                    "error": check.error if check is not None else "",
                },
                "oidc": {"configured": bool(state.oidc_issuer), "issuer": state.oidc_issuer},
                "last_run": shown[state.last_run.pk] if state.last_run else None,
                "last_applied": shown[state.last_applied.pk] if state.last_applied else None,
            }
        )


class GroupMappingSerializer(ModelSerializer):
    serializer_choice_field = PlainChoiceField
    team = serializers.SlugRelatedField[Team](slug_field="name", read_only=True)

    class Meta:
        model = GroupMapping
        fields = ["id", "source", "group", "team", "created_at"]
        read_only_fields = fields
        extra_kwargs = {"source": {"help_text": SOURCES}, "group": {"help_text": GROUP}}


class GroupMappingCreateSerializer(ModelSerializer):
    """Shape only: ``group_mapping_create`` checks the group, and refuses a mapping twice."""

    serializer_choice_field = PlainChoiceField
    team = serializers.CharField(max_length=64, help_text="The team's name.")

    class Meta:
        model = GroupMapping
        fields = ["source", "group", "team"]
        extra_kwargs = {"source": {"help_text": SOURCES}, "group": {"help_text": GROUP}}


class GroupMappingViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Which directory groups make the members of which teams. A mapped team's members are
    set by the directory, never by hand."""

    request: AuthenticatedRequest  # every action is an admin's

    permission_classes = [IsAdmin]
    queryset = GroupMapping.objects.none()  # names the model for the schema; get_queryset reads
    serializer_class = GroupMappingSerializer

    def get_queryset(self) -> QuerySet[GroupMapping]:
        return selectors.group_mappings()

    @extend_schema(
        request=GroupMappingCreateSerializer,
        responses={201: GroupMappingSerializer},
        description="The team's members are set at once from the groups each directory user "
        "last had: members added by hand who are not in a mapped group are removed.",
    )
    def create(self, request: AuthenticatedRequest) -> Response:
        data = GroupMappingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["team"]
        team = Team.objects.filter(name=name).first()
        if team is None:
            raise exceptions.ValidationError({"team": [f"No team is named {name!r}."]})
        mapping = services.group_mapping_create(
            actor=request.user,
            source=data.validated_data["source"],
            group=data.validated_data["group"],
            team=team,
        )
        return Response(GroupMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={204: None},
        description="A team left without mappings keeps its members, and is edited by hand again.",
    )
    def destroy(self, request: AuthenticatedRequest, pk: str) -> Response:
        services.group_mapping_delete(actor=request.user, mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class SyncRunListView(ListAPIView):
    """The latest syncs, newest first, dry runs included."""

    permission_classes = [IsAdmin]
    serializer_class = SyncRunSerializer
    queryset = SyncRun.objects.none()  # names the model for the schema; get_queryset reads

    def get_queryset(self) -> QuerySet[SyncRun]:
        return selectors.sync_runs()


class SyncRequestSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        default=False, help_text="Only work out and record what a sync would change."
    )


class SyncView(APIView):
    """Sync now (``services.directory_sync``). A directory that cannot be read, or that
    lists nobody while Gatehouse has directory users, changes nothing: the run's ``outcome``
    and ``error`` say so."""

    permission_classes = [IsAdmin]

    @extend_schema(
        request=SyncRequestSerializer,
        responses={
            200: SyncRunSerializer,
            400: OpenApiResponse(
                description="Nothing to sync: LDAP cannot list everyone, and OpenID Connect "
                "is not configured (`source`)"
            ),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = SyncRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.directory_sync(
            trigger=SyncRun.Trigger.MANUAL,
            actor=request.user,
            dry_run=data.validated_data["dry_run"],
        )
        return Response(SyncRunSerializer(result.run).data)
