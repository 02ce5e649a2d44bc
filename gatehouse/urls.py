from django.urls import include, path

from gatehouse import dashboard, health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/", include("gatehouse.api_urls")),
    path("auth/token", include("trust.token_service.views")),
    path("", dashboard.dashboard, name="dashboard"),
    path("", include("audit.urls")),
    path("", include("accounts.urls")),
    path("", include("bundles.urls")),
    path("", include("trust.urls")),
    path("", include("policy.urls")),
    path("", include("directory.urls")),
]
