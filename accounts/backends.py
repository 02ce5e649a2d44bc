"""Django's model backend with a lockout: every login path (console, API, Notary's token
service) goes through ``authenticate``, so one backend guards them all."""

from functools import partial

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from accounts import services
from accounts.models import User
from gatehouse.addresses import client_address


class LockoutModelBackend(ModelBackend):
    """Checks a password only as an attempt counted atomically per account and per address
    (``services.password_check``): raises ``services.LoginLocked`` when either has too many
    recent failures, even for the right password, and ``services.LoginThrottled`` when the
    address asks for too many password checks. A wrong password is a failure; a right one
    clears the account's failures. The username's case does not matter."""

    @sensitive_variables("password")
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: object,
    ) -> User | None:
        if username is None or password is None:
            return None
        return services.password_check(
            username=username,
            address=client_address(request),
            check=partial(
                super().authenticate, request, username=username, password=password, **kwargs
            ),
        )
