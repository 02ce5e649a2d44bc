"""The identity API: ``/api/v1/auth/``, ``/api/v1/users/``, ``/api/v1/teams/``.

Views parse input, call one service or selector, and render the result.
"""

import datetime as dt
from typing import Any, cast

import django_filters
from django.contrib.auth import authenticate, logout
from django.db.models import Field, Model, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import ApiToken, Team, User
from accounts.typing import AuthenticatedRequest
from audit.services import audit_record, login_failure_record
from gatehouse.addresses import client_address
from gatehouse.api import Conflict, DateTimeField, IsAdmin, ModelSerializer


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)
    expires_at = DateTimeField(read_only=True)


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)


class LockedOut(exceptions.APIException):
    """A 429 with ``Retry-After``; the message says in how many minutes."""

    status_code = 429
    default_detail = services.LoginLocked.MESSAGE
    default_code = "locked_out"

    def __init__(self, error: services.LoginLocked) -> None:
        super().__init__(detail=str(error))
        self.wait = error.retry_after  # DRF's handler sends it as Retry-After


def login_throttled(error: services.LoginRefused) -> exceptions.Throttled:
    """A 429 with ``Retry-After``; DRF adds when to try again to the message."""
    return exceptions.Throttled(wait=error.retry_after, detail=services.LoginThrottled.MESSAGE)


class DirectoryUnavailable(exceptions.APIException):
    """A 503 with ``Retry-After``: the directory that checks the password cannot be reached."""

    status_code = 503
    default_code = "directory_unavailable"

    def __init__(self, error: services.LoginUnavailable) -> None:
        super().__init__(detail=str(error))
        self.wait = error.retry_after


def login_refused(error: services.LoginRefused) -> exceptions.APIException:
    if isinstance(error, services.LoginLocked):
        return LockedOut(error)
    if isinstance(error, services.LoginUnavailable):
        return DirectoryUnavailable(error)
    return login_throttled(error)


class LoginView(APIView):
    """Exchange a username and password for a bearer token."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        """Wrong credentials are a 401, as for any other failed authentication."""
        return "Bearer"

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            401: OpenApiResponse(description="Wrong credentials"),
            429: OpenApiResponse(
                description="Locked out after failed logins; too many login attempts from "
                "the address; or too many tokens"
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        credentials = LoginSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        username = credentials.validated_data["username"]
        try:
            user = authenticate(request, **credentials.validated_data)
        except services.LoginRefused as error:
            raise login_refused(error) from error
        if user is None:
            login_failure_record(username=username, via="api")
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        try:
            raw_token, token = services.api_token_create(user=user)
        except services.TooManyTokens as error:
            raise exceptions.Throttled(detail=f"{error} Try again later.") from error
        audit_record(
            action="login.succeeded",
            actor=user,
            target_type="user",
            target_id=user.username,
            after={"via": "api"},
        )
        return Response({"token": raw_token, "expires_at": token.expires_at})


class LogoutView(APIView):
    """Revoke the token in use (or end the browser session)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            services.api_token_revoke(token=request.auth)
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RelatedNamesField(serializers.ListField):
    """Related ``model`` objects by their ``slug_field``, for a field named as the relation:
    from the context's entry under that name (names by object id, read at once for what a
    request shows), else from the relation itself (an object just written)."""

    def __init__(self, *, model: type[Model], slug_field: str, **kwargs: Any) -> None:
        # Described as the slug's model field, as SlugRelatedField would be in the schema.
        help_text = cast(Field, model._meta.get_field(slug_field)).help_text or None
        super().__init__(child=serializers.CharField(help_text=help_text), read_only=True, **kwargs)
        self.slug_field = slug_field

    def get_attribute(self, instance: Model) -> list[str]:
        relation = cast(str, self.field_name)  # set once bound to its serializer
        names = self.context.get(relation)
        if names is not None:
            return names.get(instance.pk, [])
        return [getattr(item, self.slug_field) for item in getattr(instance, relation).all()]


class UserSerializer(ModelSerializer):
    teams = RelatedNamesField(model=Team, slug_field="name")
    # Blank when the user has none, so not ``format: email`` in the schema.
    email = serializers.CharField(read_only=True)
    locked_until = serializers.SerializerMethodField(
        help_text="When the account's lockout after failed logins lifts; null when not locked."
    )

    class Meta:
        model = User
        fields = [
            "username",
            "full_name",
            "email",
            "is_admin",
            "is_active",
            "teams",
            "date_joined",
            "locked_until",
        ]
        read_only_fields = fields

    def get_locked_until(self, user: User) -> dt.datetime | None:
        """From the context's ``locked_until`` (what the request shows, read at once) or else
        read now."""
        locked = self.context.get("locked_until")
        if locked is None:
            locked = selectors.users_locked_until([user])
        return locked.get(user.username)


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, write_only=True, trim_whitespace=False)
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    is_admin = serializers.BooleanField(required=False, default=False)


class UserUpdateSerializer(serializers.Serializer):
    full_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    is_admin = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)

    ADMIN_ONLY = frozenset({"is_admin", "is_active"})


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(
        max_length=4096, required=False, write_only=True, trim_whitespace=False
    )
    new_password = serializers.CharField(max_length=4096, write_only=True, trim_whitespace=False)


class UserFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", label="Username, name or email")
    team = django_filters.CharFilter(field_name="teams__name", label="Team name")
    locked = django_filters.BooleanFilter(
        method="filter_locked", label="Locked out after failed logins"
    )

    class Meta:
        model = User
        fields = ["is_active", "is_admin"]

    def filter_search(self, queryset: QuerySet[User], name: str, value: str) -> QuerySet[User]:
        return selectors.users_matching(queryset, value)

    def filter_locked(self, queryset: QuerySet[User], name: str, value: bool) -> QuerySet[User]:
        return selectors.users_locked(queryset, value)


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Users. Admins see and manage everyone; a user sees and edits only themself."""

    request: AuthenticatedRequest  # every action needs a signed-in user

    queryset = User.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = UserSerializer
    filterset_class = UserFilter
    lookup_field = "username"
    lookup_value_regex = r"[^/]+"
    READS = frozenset({"list", "retrieve"})  # answered from what users_shown read with them

    def get_queryset(self) -> QuerySet[User]:
        if self.action in self.READS:
            return selectors.users_shown(viewer=self.request.user)
        return selectors.users_visible(viewer=self.request.user)

    def get_permissions(self) -> list:
        if self.action in {"create", "destroy", "unlock"}:
            return [IsAdmin()]
        return [IsAuthenticated()]

    def get_serializer(self, *args: Any, **kwargs: Any) -> serializers.BaseSerializer:
        """The users a read shows (a page, or one) have their teams read in one query, and
        their lockouts from the query that read them."""
        if self.action in self.READS and args:
            users = list(args[0]) if kwargs.get("many") else [args[0]]
            context = self.get_serializer_context()
            context["teams"] = selectors.team_names_of(users)
            context["locked_until"] = selectors.users_locked_until(users)
            kwargs["context"] = context
        return super().get_serializer(*args, **kwargs)

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request: AuthenticatedRequest) -> Response:
        data = UserCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(actor=request.user, **data.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UserUpdateSerializer, responses={200: UserSerializer})
    def partial_update(self, request: AuthenticatedRequest, username: str) -> Response:
        user = self.get_object()
        data = UserUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if not request.user.is_admin and (
            user.pk != request.user.pk or changes.keys() & UserUpdateSerializer.ADMIN_ONLY
        ):
            raise exceptions.PermissionDenied("You may change only your own full name and email.")
        is_active = changes.pop("is_active", None)
        user = services.user_update(actor=request.user, user=user, **changes)
        if is_active is True:
            user = services.user_reactivate(actor=request.user, user=user)
        elif is_active is False:
            user = services.user_deactivate(actor=request.user, user=user)
        return Response(UserSerializer(user).data)

    @extend_schema(responses={204: None}, description="Deactivates the user; nothing is deleted.")
    def destroy(self, request: AuthenticatedRequest, username: str) -> Response:
        services.user_deactivate(actor=request.user, user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={
            204: None,
            429: OpenApiResponse(
                description="Your own password: the account or address is locked out after "
                "failed logins (a wrong `old_password` is one), or the address asked for too "
                "many password checks"
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def password(self, request: AuthenticatedRequest, username: str) -> Response:
        """Change a password: the user with their old password, or an admin."""
        user = self.get_object()
        if user.pk != request.user.pk and not request.user.is_admin:
            raise exceptions.PermissionDenied("Only admins may change another user's password.")
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.user_password_change(
                actor=request.user,
                user=user,
                keep_token=request.auth if isinstance(request.auth, ApiToken) else None,
                address=client_address(request),
                **data.validated_data,
            )
        except services.LoginRefused as error:
            raise login_refused(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: UserSerializer},
        description="Lift the account's lockout after failed logins (admins). Audited as "
        "`user.unlocked` when the account was locked.",
    )
    @action(detail=True, methods=["post"])
    def unlock(self, request: AuthenticatedRequest, username: str) -> Response:
        user = self.get_object()
        services.user_unlock(actor=request.user, user=user)
        return Response(UserSerializer(user).data)


class TeamSerializer(ModelSerializer):
    members = RelatedNamesField(model=User, slug_field="username")

    class Meta:
        model = Team
        fields = ["name", "description", "members", "created_at"]
        read_only_fields = ["members", "created_at"]
        extra_kwargs: dict[str, dict[str, object]] = {"name": {"validators": []}}


class TeamUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)


class MemberSerializer(ModelSerializer):
    class Meta:
        model = User
        fields = ["username", "full_name", "is_active"]
        read_only_fields = fields


class TeamFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", label="Name or description")
    member = django_filters.CharFilter(field_name="memberships__user__username", label="Username")

    class Meta:
        model = Team
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet[Team], name: str, value: str) -> QuerySet[Team]:
        return selectors.teams_matching(queryset, value)


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Teams. Everyone sees the teams they belong to; admins see and change all of them."""

    request: AuthenticatedRequest  # every action needs a signed-in user

    queryset = Team.objects.none()  # names the model for the schema; get_queryset scopes
    serializer_class = TeamSerializer
    filterset_class = TeamFilter
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self) -> QuerySet[Team]:
        return selectors.teams_visible(viewer=self.request.user)

    def get_permissions(self) -> list:
        if self.action in {"list", "retrieve", "members"}:
            return [IsAuthenticated()]
        return [IsAdmin()]

    def get_serializer(self, *args: Any, **kwargs: Any) -> serializers.BaseSerializer:
        """The teams a read shows (a page, or one) have their members read in one query."""
        if self.action in {"list", "retrieve"} and args:
            teams = list(args[0]) if kwargs.get("many") else [args[0]]
            context = self.get_serializer_context()
            context["members"] = selectors.member_names_of(teams)
            kwargs["context"] = context
        return super().get_serializer(*args, **kwargs)

    @extend_schema(request=TeamSerializer, responses={201: TeamSerializer})
    def create(self, request: AuthenticatedRequest) -> Response:
        data = TeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(actor=request.user, **data.validated_data)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamUpdateSerializer, responses={200: TeamSerializer})
    def partial_update(self, request: AuthenticatedRequest, name: str) -> Response:
        team = self.get_object()
        if "name" in request.data and request.data["name"] != team.name:
            raise exceptions.ValidationError(
                {"name": ["Team names cannot be changed: they name Notary roles."]}
            )
        data = TeamUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_update(actor=request.user, team=team, **data.validated_data)
        return Response(TeamSerializer(team).data)

    @extend_schema(
        responses={
            204: None,
            409: OpenApiResponse(
                response=inline_serializer(
                    "TeamInUse",
                    {
                        "detail": serializers.CharField(),
                        "used_by": serializers.ListField(child=serializers.CharField()),
                    },
                ),
                description="The content-trust policy or a repository names the team; "
                "`used_by` says which. Nothing is deleted.",
            ),
        }
    )
    def destroy(self, request: AuthenticatedRequest, name: str) -> Response:
        try:
            services.team_delete(actor=request.user, team=self.get_object())
        except services.TeamInUse as error:
            raise Conflict({"detail": error.detail, "used_by": error.used_by}) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: MemberSerializer(many=True)}, filters=False)
    @action(detail=True, methods=["get"], filterset_class=None)
    def members(self, request: Request, name: str) -> Response:
        members = selectors.team_members(team=self.get_object())
        page = self.paginate_queryset(members.only(*MemberSerializer.Meta.fields))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)


MEMBERSHIP_OWNED = OpenApiResponse(
    response=inline_serializer(
        "MembershipOwned",
        {
            "detail": serializers.CharField(),
            "owned_by": serializers.ListField(child=serializers.CharField()),
        },
    ),
    description="The team's members come from elsewhere (a directory group mapped to it); "
    "`owned_by` says what. Nothing is changed.",
)


def membership_owned(error: services.MembershipOwned) -> Conflict:
    return Conflict({"detail": error.detail, "owned_by": error.owners})


class TeamMemberView(APIView):
    """``PUT`` adds a user to a team, ``DELETE`` removes them (admins only)."""

    permission_classes = [IsAdmin]

    def _team_and_user(self, name: str, username: str) -> tuple[Team, User]:
        team = get_object_or_404(Team, name=name)
        user = get_object_or_404(User, username=username)
        return team, user

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "MemberAdded",
                {"team": serializers.CharField(), "username": serializers.CharField()},
            ),
            200: OpenApiResponse(description="Already a member"),
            409: MEMBERSHIP_OWNED,
        },
    )
    def put(self, request: AuthenticatedRequest, name: str, username: str) -> Response:
        team, user = self._team_and_user(name, username)
        try:
            _, created = services.team_member_add(actor=request.user, team=team, user=user)
        except services.MembershipOwned as error:
            raise membership_owned(error) from error
        return Response(
            {"team": team.name, "username": user.username},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(responses={204: None, 409: MEMBERSHIP_OWNED})
    def delete(self, request: AuthenticatedRequest, name: str, username: str) -> Response:
        team, user = self._team_and_user(name, username)
        try:
            removed = services.team_member_remove(actor=request.user, team=team, user=user)
        except services.MembershipOwned as error:
            raise membership_owned(error) from error
        if not removed:
            raise exceptions.NotFound(f"'{username}' is not a member of '{name}'.")
        return Response(status=status.HTTP_204_NO_CONTENT)
