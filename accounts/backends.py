"""Django's model backend with a lockout: every login path (console, API, Notary's token
service) goes through ``authenticate``, so one backend guards them all."""

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from accounts import services
from accounts.models import User
from gatehouse.addresses import client_address


class LockoutModelBackend(ModelBackend):
    """Refuses an account or an address with too many recent failures, even with the right
    password, and records each failure; a success clears the account's failures. Raises
    ``services.LoginThrottled`` when the address asks for too many password checks."""

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
        address = client_address(request)
        if services.login_locked(username=username, address=address):
            return None
        services.password_check_admit(address=address)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            services.login_failure_record(username=username, address=address)
        else:
            services.login_failures_clear(username=username)
        return user
