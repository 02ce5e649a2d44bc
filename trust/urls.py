"""Console pages for content trust.

The lists keep the plain names ``repositories`` and ``jobs`` the sidebar has always used;
the pages of one repository are in the ``repositories:`` namespace and the trust root in
``trust:``, since the API's router already owns ``repository-detail`` and the like.
"""

from django.urls import include, path

from trust import views

repository_patterns = [
    path("new/", views.repository_create, name="create"),
    path("bulk/", views.repository_bulk, name="bulk"),
    path("progress/", views.repository_progress, name="progress"),
    path("<int:pk>/", views.repository_detail, name="detail"),
    path("<int:pk>/signers/", views.repository_signers, name="signers"),
    path("<int:pk>/sync/", views.repository_sync, name="sync"),
    path("<int:pk>/delete/", views.repository_delete, name="delete"),
]

job_patterns = [
    path("<int:pk>/", views.job_detail, name="detail"),
]

trust_patterns = [
    path("root/", views.trust_root, name="root"),
    path("root/export/", views.trust_root_export, name="root_export"),
    path("root/pins/", views.root_pin_create, name="pin_create"),
    path("root/pins/<int:pk>/delete/", views.root_pin_delete, name="pin_delete"),
]

urlpatterns = [
    path("repositories/", views.repository_list, name="repositories"),
    path("repositories/", include((repository_patterns, "repositories"))),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/", include((job_patterns, "jobs"))),
    path("trust/", include((trust_patterns, "trust"))),
]
