"""A directory for the console and API tests that need one to list people: the real sync,
plan and services run, and only LDAP's answer is made up. Tests of LDAP itself use slapd."""

import socket

from directory import config
from directory.ldap import Person, Snapshot, group_key
from directory.models import DirectoryAccount, Source
from tests.factories import make_user

BIND_PASSWORD = "s3cret-bind-password"
CLIENT_SECRET = "s3cret-client-secret"
CI_GROUP = "cn=ci,ou=groups,dc=example,dc=org"


def closed_port() -> int:
    """A port nothing listens on: bound for a moment, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ldap_configured(settings, url: str = "") -> None:
    """LDAP set up for syncs (a service account and a user base), at ``url`` or else at a
    closed port, where a connection is refused at once."""
    settings.GATEHOUSE_LDAP_URL = url or f"ldaps://127.0.0.1:{closed_port()}"
    settings.GATEHOUSE_LDAP_BIND_DN = "cn=gatehouse,ou=services,dc=example,dc=org"
    settings.GATEHOUSE_LDAP_BIND_PASSWORD = BIND_PASSWORD
    settings.GATEHOUSE_LDAP_USER_BASE = "ou=people,dc=example,dc=org"
    settings.GATEHOUSE_LDAP_TIMEOUT_SECONDS = 1.0


def oidc_configured(settings, issuer: str) -> None:
    settings.GATEHOUSE_OIDC_ISSUER = issuer
    settings.GATEHOUSE_OIDC_CLIENT_ID = "gatehouse"
    settings.GATEHOUSE_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.GATEHOUSE_OIDC_NAME = "Example SSO"


class ListedDirectory:
    """Answers a sync with ``people`` (username → the DNs of their groups)."""

    def __init__(self, people: dict[str, list[str]]) -> None:
        self.people = people
        self.config = config.ldap_config()  # as the settings say

    def check(self) -> None:
        return None

    def snapshot(self) -> Snapshot:
        return Snapshot(
            people={
                username: Person(
                    username=username,
                    dn=f"uid={username},ou=people,dc=example,dc=org",
                    full_name=username.capitalize(),
                    email="",
                    groups=frozenset(group_key(group) for group in groups),
                )
                for username, groups in self.people.items()
            },
            disabled=frozenset(),
            groups=frozenset(
                group_key(group) for groups in self.people.values() for group in groups
            ),
        )


def directory_lists(monkeypatch, settings, people: dict[str, list[str]]) -> None:
    """LDAP configured, and answering syncs with ``people``."""
    ldap_configured(settings)
    monkeypatch.setattr(config, "ldap_directory", lambda: ListedDirectory(people))


def directory_user(username: str, groups: tuple[str, ...] = ()):
    """A user who came from LDAP, with the groups it last gave them."""
    user = make_user(username, full_name=username.capitalize())
    DirectoryAccount.objects.create(
        user=user,
        source=Source.LDAP,
        subject=username,
        groups=sorted(group_key(group) for group in groups),
    )
    return user
