from django.urls import include, path

from gatehouse import views

urlpatterns = [
    path("api/v1/", include("gatehouse.api_urls")),
    path("auth/token", include("trust.token_views")),
    path("", views.dashboard, name="dashboard"),
    path("audit/", views.coming_soon, {"section": "audit"}, name="audit"),
    path("", include("accounts.urls")),
    path("", include("bundles.urls")),
    path("", include("trust.urls")),
    path("", include("policy.urls")),
]
