"""Console pages for client bundles and public keys, in the ``keys:`` namespace.

Key actions name the key alone (``/keys/<key_id>/...``): the views find it through the
selectors, so a key the viewer may not see is a 404 whoever owns it.
"""

from django.urls import path

from bundles import views

app_name = "keys"

urlpatterns = [
    path("profile/bundle/", views.bundle_download, name="bundle"),
    path("profile/keys/register/", views.key_register, name="register"),
    path("users/<str:username>/keys/register/", views.key_register, name="register_for"),
    path("keys/<str:key_id>/label/", views.key_label, name="label"),
    path("keys/<str:key_id>/signing/", views.key_signing, name="signing"),
    path("keys/<str:key_id>/revoke/", views.key_revoke, name="revoke"),
]
