"""Console pages of the content-trust policy. ``content_trust`` is the name the sidebar has
always used for the settings page."""

from django.urls import path

from policy import views

urlpatterns = [
    path("content-trust/", views.content_trust, name="content_trust"),
    path("content-trust/check/", views.image_check, name="content_trust_check"),
    path("content-trust/admission/", views.admission_decisions, name="admission_decisions"),
    path("content-trust/rules/new/", views.rule_add, name="content_trust_rule_add"),
    path("content-trust/rules/<slug:name>/edit/", views.rule_edit, name="content_trust_rule_edit"),
    path(
        "content-trust/rules/<slug:name>/delete/",
        views.rule_delete,
        name="content_trust_rule_delete",
    ),
    path("content-trust/rules/<slug:name>/move/", views.rule_move, name="content_trust_rule_move"),
    path("content-trust/yaml/", views.policy_yaml, name="content_trust_yaml"),
    path("content-trust/save/", views.policy_save, name="content_trust_save"),
    path("content-trust/history/", views.policy_history, name="content_trust_history"),
    path(
        "content-trust/history/<int:number>/revert/",
        views.policy_revert,
        name="content_trust_revert",
    ),
]
