"""The one authentication backend: every login path (console, API, Notary's token service)
goes through ``authenticate``. A local account's password is checked against Gatehouse's
hash, a directory user's by an LDAP bind, and each check is one attempt counted atomically
per account and per address (``accounts.services.password_check``): ``LoginLocked`` when
either has too many recent failures, even for the right password, ``LoginThrottled`` past
the address's password checks, ``LoginUnavailable`` when the directory cannot be reached
(not a failure). The username's case does not matter."""

import logging
import re
import unicodedata
from functools import partial

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from accounts import services as accounts
from accounts.models import User
from directory import config, services
from directory.ldap import MAX_USERNAME, DirectoryUnavailable
from directory.models import DirectoryAccount, Source
from gatehouse.addresses import client_address

logger = logging.getLogger(__name__)
# How long a refused login asks the caller to wait while the directory cannot be reached.
RETRY_AFTER_SECONDS = 30
USERNAME = re.compile(r"[\w.@+-]+")  # UnicodeUsernameValidator's, which every username passes


def _possible_username(username: str) -> bool:
    """Whether ``username`` could name an account: a Gatehouse username as stored (letters,
    digits and ``@.+-_``, in Unicode's NFKC form, at most ``MAX_USERNAME`` long). Any other
    spelling (``"bob "``, ``bob`` in fullwidth letters) would reach the same directory entry
    under a lockout counter of its own, since LDAP ignores spaces and folds such letters
    when it compares."""
    return (
        len(username) <= MAX_USERNAME
        and unicodedata.normalize("NFKC", username) == username
        and USERNAME.fullmatch(username) is not None
    )


class DirectoryBackend(ModelBackend):
    """A username of a local account (no directory account) is checked against Gatehouse's
    own hash, whether or not LDAP is up: the break-glass admin always gets in. Any other is
    checked by LDAP, when it is configured: an unknown username is looked up there, and a
    directory user is created at their first login. A user from OpenID Connect has no
    password here at all."""

    @sensitive_variables("password")
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: object,
    ) -> User | None:
        if username is None or password is None or not _possible_username(username):
            return None
        return accounts.password_check(
            username=username,
            address=client_address(request),
            check=partial(self._check, request, username, password),
        )

    @sensitive_variables("password")
    def _check(self, request: HttpRequest | None, username: str, password: str) -> User | None:
        user = User.objects.with_username(username).first()
        source = (
            DirectoryAccount.objects.filter(user=user).values_list("source", flat=True).first()
            if user is not None
            else None
        )
        directory = config.ldap_directory()
        if directory is None or (user is not None and source != Source.LDAP):
            # A local account, or LDAP is off: Gatehouse's own hash (a directory user's is
            # unusable), which costs the same time whether or not the username exists.
            return super().authenticate(request, username=username, password=password)
        # As a local check costs: a deliberately slow hash, so the time taken does not tell
        # local accounts from the directory's, nor either from no account.
        User().set_password(password)
        try:
            person = directory.authenticate(username, password)
        except DirectoryUnavailable as error:
            logger.warning("LDAP login of a directory user impossible: %s", error)
            raise accounts.LoginUnavailable(retry_after=RETRY_AFTER_SECONDS) from error
        if person is None:
            return None
        try:
            user = services.ldap_login(person)
        except services.LoginRefusedByDirectory as error:
            logger.warning("LDAP login refused: %s", error)
            return None
        return user if self.user_can_authenticate(user) else None
