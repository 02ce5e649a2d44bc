"""Console pages of the content-trust policy. ``content_trust`` is the name the sidebar has
always used for the settings page."""

from django.urls import path

from policy import views

urlpatterns = [
    path("content-trust/", views.content_trust, name="content_trust"),
    path("content-trust/check/", views.image_check, name="content_trust_check"),
    path("content-trust/admission/", views.admission_decisions, name="admission_decisions"),
]
