"""OpenID Connect sign-in (``oidc-login``, ``oidc-callback``), and the admins' directory page
under its own namespace (``directory:``)."""

from django.urls import include, path

from directory import views

console_patterns = [
    path("", views.console, name="console"),
    path("mappings/", views.mapping_create, name="mapping_create"),
    path("mappings/<int:pk>/delete/", views.mapping_delete, name="mapping_delete"),
    path("sync/preview/", views.sync_preview, name="sync_preview"),
    path("sync/", views.sync_now, name="sync"),
]

urlpatterns = [
    path("oidc/login/", views.oidc_login, name="oidc-login"),
    path("oidc/callback/", views.oidc_callback, name="oidc-callback"),
    path("directory/", include((console_patterns, "directory"))),
]
