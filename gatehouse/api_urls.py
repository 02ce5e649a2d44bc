"""One router for ``/api/v1/``; each app registers its endpoints here."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api import LoginView, LogoutView, TeamMemberView, TeamViewSet, UserViewSet
from audit.api import AuditEntryViewSet
from bundles.api import BundleView, ClientCAView, KeyChallengeView, PublicKeyViewSet
from directory.api import DirectoryStatusView, GroupMappingViewSet, SyncRunListView, SyncView
from policy.api import (
    AdmissionDecisionListView,
    AdmissionMutateView,
    AdmissionValidateView,
    ContentTrustPolicyView,
    EvaluateView,
    PolicyPreviewView,
    PolicyRevertView,
    PolicyVersionDetailView,
    PolicyVersionListView,
    PolicyView,
    WebhookConfigurationView,
)
from trust.api.repositories import JobViewSet, RepositoryViewSet
from trust.api.root import RootKeyPinViewSet, TrustRootExportView, TrustRootView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("users", UserViewSet, basename="user")
router.register("teams", TeamViewSet, basename="team")
router.register(r"users/(?P<username>[^/]+)/keys", PublicKeyViewSet, basename="user-key")
router.register("repositories", RepositoryViewSet, basename="repository")
router.register("jobs", JobViewSet, basename="job")
router.register("audit", AuditEntryViewSet, basename="audit-entry")
router.register("trust/pins", RootKeyPinViewSet, basename="root-pin")
router.register("directory/mappings", GroupMappingViewSet, basename="directory-mapping")

urlpatterns = [
    path("auth/login/", LoginView.as_view(), name="api-login"),
    path("auth/logout/", LogoutView.as_view(), name="api-logout"),
    path(
        "teams/<str:name>/members/<str:username>/",
        TeamMemberView.as_view(),
        name="api-team-member",
    ),
    path("bundles/", BundleView.as_view(), name="api-bundles"),
    path("bundles/ca.pem", ClientCAView.as_view(), name="api-client-ca"),
    path("keys/challenge/", KeyChallengeView.as_view(), name="api-key-challenge"),
    path("policy/", PolicyView.as_view(), name="api-policy-document"),
    path("policy/preview/", PolicyPreviewView.as_view(), name="api-policy-preview"),
    path("policy/versions/", PolicyVersionListView.as_view(), name="api-policy-versions"),
    path(
        "policy/versions/<int:number>/",
        PolicyVersionDetailView.as_view(),
        name="api-policy-version",
    ),
    path(
        "policy/versions/<int:number>/revert/",
        PolicyRevertView.as_view(),
        name="api-policy-revert",
    ),
    path("policy/content-trust/", ContentTrustPolicyView.as_view(), name="api-policy"),
    path("policy/evaluate/", EvaluateView.as_view(), name="api-evaluate"),
    path("admission/validate/", AdmissionValidateView.as_view(), name="api-admission-validate"),
    path("admission/mutate/", AdmissionMutateView.as_view(), name="api-admission-mutate"),
    path(
        "admission/decisions/",
        AdmissionDecisionListView.as_view(),
        name="api-admission-decisions",
    ),
    path(
        "admission/webhook-configuration/",
        WebhookConfigurationView.as_view(),
        name="api-admission-webhook-configuration",
    ),
    path("trust/root/", TrustRootView.as_view(), name="api-trust-root"),
    path("trust/root/export/", TrustRootExportView.as_view(), name="api-trust-root-export"),
    path("directory/", DirectoryStatusView.as_view(), name="api-directory"),
    path("directory/runs/", SyncRunListView.as_view(), name="api-directory-runs"),
    path("directory/sync/", SyncView.as_view(), name="api-directory-sync"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]
