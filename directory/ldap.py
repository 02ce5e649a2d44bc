"""An LDAP directory, read with ldap3: check a person's password, and read everyone at once.

No Django here: ``LdapConfig`` carries the settings (``directory.config`` builds it). Every
value a person types reaches the server escaped: filter values with
``escape_filter_chars``, DN values with ``escape_rdn``. The connection is TLS (``ldaps://``,
or StartTLS on ``ldap://``) with the server's certificate and host name verified, unless
``allow_plain`` (a development setting) says otherwise.

Anything that goes wrong on the way (refused, timed out, TLS, a result past a size limit, a
base that does not exist) is ``DirectoryUnavailable``: the caller changes nothing. A wrong
password, an unknown or disabled person is ``None`` from ``authenticate``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPNoSuchObjectResult,
    LDAPSASLPrepError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_USERNAME = 150
# A bind the server refused, or one ldap3 would not send: a password with characters LDAP's
# string preparation prohibits cannot be anyone's.
BIND_REFUSED = (LDAPInvalidCredentialsResult, LDAPSASLPrepError)


class DirectoryUnavailable(Exception):
    """The directory could not be asked, or did not answer in full. Nothing may be concluded
    from it: not that someone left, nor that a password is wrong."""


@dataclass(frozen=True)
class LdapConfig:
    url: str  # ldaps://host[:port] or ldap://host[:port]
    start_tls: bool = True  # for ldap://: upgrade with StartTLS before binding
    allow_plain: bool = False  # ldap:// without StartTLS: development only
    ca_file: str = ""  # the CA that signed the server's certificate; blank: the system's
    bind_dn: str = ""  # the service account that searches; blank: bind as the person
    bind_password: str = field(default="", repr=False)
    user_dn_template: str = ""  # "uid={username},ou=people,dc=example,dc=org"
    user_base: str = ""
    user_filter: str = "(objectClass=inetOrgPerson)"
    disabled_filter: str = (
        ""  # matches the people who may not log in, e.g. "(pwdAccountLockedTime=*)"
    )
    username_attribute: str = "uid"
    full_name_attribute: str = "cn"
    email_attribute: str = "mail"
    group_base: str = ""
    group_filter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    member_attribute: str = "member"
    group_name_attribute: str = "cn"
    timeout: float = 5.0

    @property
    def can_list(self) -> bool:
        """A scheduled sync reads everyone, which needs the service account and the bases."""
        return bool(self.bind_dn and self.user_base)


@dataclass(frozen=True)
class Person:
    """A person as the directory describes them. ``groups`` holds, for each group they are a
    direct member of, its DN and its name, both as ``group_key`` makes them."""

    username: str
    dn: str
    full_name: str
    email: str
    groups: frozenset[str]


@dataclass(frozen=True)
class Snapshot:
    """Everyone the user filter finds, by lowercased username, which of them are disabled,
    and every group found (``group_key``s of their DNs and names). Complete or not at all:
    a partial read raises instead."""

    people: dict[str, Person]
    disabled: frozenset[str]
    groups: frozenset[str]


def group_key(name: str) -> str:
    """How a group is compared: a DN as its lowercased ``attribute=value`` parts joined by
    commas (``CN=ci, OU=Groups`` is ``cn=ci,ou=groups``), a plain name lowercased."""
    text = name.strip()
    if "=" not in text:
        return text.lower()
    try:
        parts = parse_dn(text, escape=False, strip=True)
    except LDAPException:
        return text.lower()
    return ",".join(f"{attribute.strip()}={value.strip()}" for attribute, value, _ in parts).lower()


def valid_username(username: str) -> bool:
    """What may be looked up at all: a login name, not a filter or a DN."""
    return 0 < len(username) <= MAX_USERNAME and username.isprintable() and "\x00" not in username


class LdapDirectory:
    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        url = urlsplit(config.url)
        if url.scheme not in ("ldap", "ldaps") or not url.hostname:
            raise ValueError("the LDAP URL must be ldaps://host[:port] or ldap://host[:port]")
        self._secure = url.scheme == "ldaps"
        self._start_tls = not self._secure and config.start_tls
        if not (self._secure or self._start_tls or config.allow_plain):
            raise ValueError(
                "plain LDAP sends passwords in the clear: use ldaps://, StartTLS, or the "
                "development setting that allows plain LDAP"
            )
        self._host, self._port = url.hostname, url.port or (636 if self._secure else 389)

    def _server(self) -> Server:
        """A new server each time: ldap3 stops trying an address that failed once for five
        minutes, which would outlast an outage. A CA file that cannot be read raises
        ldap3's error here, inside ``_connection``'s handling."""
        tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=self.config.ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        return Server(
            self._host,
            port=self._port,
            use_ssl=self._secure,
            tls=tls if (self._secure or self._start_tls) else None,
            connect_timeout=self.config.timeout,
            get_info="NO_INFO",
        )

    @contextmanager
    def _connection(self, user: str | None, password: str | None) -> Iterator[Connection]:
        """A bound connection; ``LDAPInvalidCredentialsResult`` for a refused bind, and
        ``DirectoryUnavailable`` for anything else that fails."""
        try:
            connection = Connection(
                self._server(),
                user=user,
                password=password,
                receive_timeout=max(1, round(self.config.timeout)),  # ldap3 packs it as an int
                raise_exceptions=True,
                read_only=True,
            )
        except LDAPException as error:
            raise DirectoryUnavailable(_describe(error)) from error
        try:
            connection.open()
            if self._start_tls:
                connection.start_tls()
            connection.bind()
            yield connection
        except BIND_REFUSED:
            raise
        except LDAPException as error:
            raise DirectoryUnavailable(_describe(error)) from error
        except OSError as error:
            raise DirectoryUnavailable(str(error) or type(error).__name__) from error
        finally:
            connection.unbind()

    def check(self) -> None:
        """Connect and bind (as the service account when there is one), or raise
        ``DirectoryUnavailable``: what ``/readyz`` asks."""
        try:
            with self._connection(self.config.bind_dn or None, self.config.bind_password or None):
                return
        except LDAPInvalidCredentialsResult as error:
            raise DirectoryUnavailable("the service account's bind was refused") from error

    def authenticate(self, username: str, password: str) -> Person | None:
        """The person ``username`` names, when ``password`` is theirs and the user filter finds
        them not disabled; else ``None``. An empty password is refused before anything is
        sent: to LDAP it would be an anonymous bind, which succeeds."""
        if not password or not valid_username(username):
            return None
        dn = self._dn_of(username)
        if dn is None:
            return None
        try:
            with self._connection(dn, password) as own:
                if self.config.bind_dn:
                    with self._service() as service:
                        return self._person_if_enabled(service, dn, username)
                return self._person_if_enabled(own, dn, username)
        except BIND_REFUSED:
            return None

    def snapshot(self) -> Snapshot:
        """Everyone the user filter finds under the user base, their groups, and who of them
        is disabled; paged, so any size limit of the server is no limit here."""
        if not self.config.can_list:
            raise DirectoryUnavailable(
                "reading everyone needs a service account (bind DN) and a user base"
            )
        attributes = self._person_attributes()
        with self._service() as service:
            entries = self._search(
                service, self.config.user_base, self.config.user_filter, attributes
            )
            people_values = {group_key(dn): (dn, values) for dn, values in entries}
            disabled: set[str] = set()
            if self.config.disabled_filter:
                for _, values in self._search(
                    service,
                    self.config.user_base,
                    f"(&{self.config.user_filter}{self.config.disabled_filter})",
                    [self.config.username_attribute],
                ):
                    username = _first(values, self.config.username_attribute)
                    if username:
                        disabled.add(username.lower())
            groups_of: dict[str, set[str]] = {key: set() for key in people_values}
            found: set[str] = set()
            for group_dn, values in self._groups(service, self.config.group_filter):
                names = _group_names(group_dn, values, self.config.group_name_attribute)
                found |= names
                for member in values.get(self.config.member_attribute, []):
                    member_key = group_key(str(member))
                    if member_key in groups_of:
                        groups_of[member_key] |= names
        people: dict[str, Person] = {}
        for key, (dn, values) in people_values.items():
            username = _first(values, self.config.username_attribute)
            if not username:
                continue
            full_name, email = self._name_and_email(values)
            people[username.lower()] = Person(
                username=username,
                dn=dn,
                full_name=full_name,
                email=email,
                groups=frozenset(groups_of[key]),
            )
        return Snapshot(
            people=people, disabled=frozenset(disabled & people.keys()), groups=frozenset(found)
        )

    # --- the parts ------------------------------------------------------------------

    @contextmanager
    def _service(self) -> Iterator[Connection]:
        try:
            with self._connection(self.config.bind_dn, self.config.bind_password) as connection:
                yield connection
        except LDAPInvalidCredentialsResult as error:
            raise DirectoryUnavailable("the service account's bind was refused") from error

    def _dn_of(self, username: str) -> str | None:
        """The DN to bind as: the template's, or the one entry a search finds."""
        if self.config.user_dn_template:
            return self.config.user_dn_template.format(username=escape_rdn(username))
        if not self.config.bind_dn:
            raise DirectoryUnavailable("set a user DN template, or a service account to search")
        with self._service() as service:
            found = self._search(
                service, self.config.user_base, self._user_filter(username), ["1.1"]
            )
        if len(found) != 1:
            if len(found) > 1:
                logger.warning("LDAP: %d entries match one username; none may log in", len(found))
            return None
        return found[0][0]

    def _user_filter(self, username: str, *extra: str) -> str:
        attribute = self.config.username_attribute
        match = f"({attribute}={escape_filter_chars(username)})"
        return f"(&{self.config.user_filter}{match}{''.join(extra)})"

    def _person_if_enabled(self, reader: Connection, dn: str, username: str) -> Person | None:
        entries = self._search(
            reader, dn, self._user_filter(username), self._person_attributes(), scope=BASE
        )
        if len(entries) != 1:
            return None
        if self.config.disabled_filter and self._search(
            reader,
            dn,
            self._user_filter(username, self.config.disabled_filter),
            ["1.1"],
            scope=BASE,
        ):
            return None
        values = entries[0][1]
        full_name, email = self._name_and_email(values)
        groups: set[str] = set()
        member_filter = f"({self.config.member_attribute}={escape_filter_chars(dn)})"
        for group_dn, group_values in self._groups(
            reader, f"(&{self.config.group_filter}{member_filter})"
        ):
            groups |= _group_names(group_dn, group_values, self.config.group_name_attribute)
        return Person(
            username=_first(values, self.config.username_attribute) or username,
            dn=dn,
            full_name=full_name,
            email=email,
            groups=frozenset(groups),
        )

    def _groups(self, reader: Connection, search_filter: str) -> list[tuple[str, dict[str, Any]]]:
        if not self.config.group_base:
            return []
        attributes = [self.config.group_name_attribute, self.config.member_attribute]
        return self._search(reader, self.config.group_base, search_filter, attributes)

    def _person_attributes(self) -> list[str]:
        config = self.config
        return [config.username_attribute, config.full_name_attribute, config.email_attribute]

    def _name_and_email(self, values: dict[str, Any]) -> tuple[str, str]:
        return (
            (_first(values, self.config.full_name_attribute) or "")[:150],
            (_first(values, self.config.email_attribute) or "")[:254],
        )

    def _search(
        self,
        connection: Connection,
        base: str,
        search_filter: str,
        attributes: list[str],
        *,
        scope: str = SUBTREE,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every entry, paged; a result the server cut short raises, never returns part."""
        try:
            if scope == BASE:
                connection.search(base, search_filter, search_scope=BASE, attributes=attributes)
                results = connection.response or []
            else:
                results = connection.extend.standard.paged_search(
                    base,
                    search_filter,
                    search_scope=scope,
                    attributes=attributes,
                    paged_size=PAGE_SIZE,
                    generator=False,
                )
        except LDAPNoSuchObjectResult as error:
            if scope == BASE:  # the person's own entry is gone
                return []
            raise DirectoryUnavailable(_describe(error)) from error
        except LDAPException as error:
            raise DirectoryUnavailable(_describe(error)) from error
        except OSError as error:
            raise DirectoryUnavailable(str(error) or type(error).__name__) from error
        return [
            (str(entry["dn"]), dict(entry.get("attributes") or {}))
            for entry in results
            if entry.get("type") == "searchResEntry"
        ]


def _first(values: dict[str, Any], attribute: str) -> str | None:
    value = values.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _group_names(dn: str, values: dict[str, Any], name_attribute: str) -> set[str]:
    names = {group_key(dn)}
    name = _first(values, name_attribute)
    if name:
        names.add(group_key(name))
    return names


def _describe(error: LDAPException) -> str:
    """The error without anything the server echoed of a bind (it never holds a password,
    but keep it short for logs and /readyz)."""
    return (str(error) or type(error).__name__).splitlines()[0][:300]
