from django.urls import include, path

from gatehouse import views

urlpatterns = [
    path("api/v1/", include("gatehouse.api_urls")),
    path("", views.dashboard, name="dashboard"),
    path("content-trust/", views.coming_soon, {"section": "content_trust"}, name="content_trust"),
    path("audit/", views.coming_soon, {"section": "audit"}, name="audit"),
    path("", include("accounts.urls")),
    path("", include("bundles.urls")),
    path("", include("trust.urls")),
]
