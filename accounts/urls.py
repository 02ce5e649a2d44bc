"""Console pages for identity: sign-in, users, teams and one's own profile.

Users and teams get their own URL namespaces (``users:``, ``teams:``): the API's router
already owns the plain names ``user-list``, ``team-detail`` and the like.
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views
from accounts.forms import LoginForm

user_patterns = [
    path("", views.user_list, name="list"),
    path("new/", views.user_create, name="create"),
    path("<str:username>/", views.user_detail, name="detail"),
    path("<str:username>/edit/", views.user_update, name="update"),
    path("<str:username>/password/", views.user_password, name="password"),
    path("<str:username>/deactivate/", views.user_deactivate, name="deactivate"),
    path("<str:username>/reactivate/", views.user_reactivate, name="reactivate"),
    path("<str:username>/unlock/", views.user_unlock, name="unlock"),
]

team_patterns = [
    path("", views.team_list, name="list"),
    path("new/", views.team_create, name="create"),
    path("<str:name>/", views.team_detail, name="detail"),
    path("<str:name>/edit/", views.team_update, name="update"),
    path("<str:name>/delete/", views.team_delete, name="delete"),
    path("<str:name>/members/", views.team_member_add, name="member_add"),
    path(
        "<str:name>/members/<str:username>/remove/",
        views.team_member_remove,
        name="member_remove",
    ),
]

urlpatterns = [
    path(
        "login/",
        views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/token/", views.profile_token_create, name="profile_token"),
    path("users/", include((user_patterns, "users"))),
    path("teams/", include((team_patterns, "teams"))),
]
