from django.urls import include, path

from gatehouse import views

urlpatterns = [
    path("api/v1/", include("gatehouse.api_urls")),
    path("", views.dashboard, name="dashboard"),
    path("repositories/", views.coming_soon, {"section": "repositories"}, name="repositories"),
    path("content-trust/", views.coming_soon, {"section": "content_trust"}, name="content_trust"),
    path("jobs/", views.coming_soon, {"section": "jobs"}, name="jobs"),
    path("audit/", views.coming_soon, {"section": "audit"}, name="audit"),
    path("", include("accounts.urls")),
    path("", include("bundles.urls")),
]
