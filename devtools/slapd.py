"""A real OpenLDAP server (slapd) for tests and benchmarks: TLS, free loopback ports, throwaway.

``Slapd.ephemeral(people, groups)`` makes a temporary directory; ``start()`` writes a CA and
a server certificate (SANs ``127.0.0.1`` and ``localhost``), a ``slapd.conf``, loads the
entries with ``slapadd`` before the server runs (1,000 users load in a fraction of a second),
then starts slapd on ``ldap://`` (StartTLS offered), ``ldaps://`` and a private ``ldapi://``
socket. ``stop()`` and ``start()`` again keep ports and data, for outage tests; ``discard()``
removes everything.

The directory looks like a small real deployment:

* people are ``inetOrgPerson`` entries ``uid=<uid>,ou=people,dc=example,dc=org`` with
  ``cn``, ``sn``, ``givenName``, ``mail`` and a ``{SSHA}`` ``userPassword``;
* groups are ``groupOfNames`` entries ``cn=<cn>,ou=groups,dc=example,dc=org``.
  ``groupOfNames`` requires a ``member``, so a group without people lists its own DN as its
  only member: a client that keeps only members under the people base sees an empty group;
* the service account ``cn=gatehouse,ou=services,dc=example,dc=org`` reads every entry and
  attribute under the suffix (operational ones included), except password hashes. People
  may bind, read their own entry and read the groups. Anonymous clients may bind and read
  the root DSE and the schema, nothing else;
* the size limit is OpenLDAP's default of 500 for everyone: listing 1,000 people takes the
  paged-results control, with which the service account may read any total in pages of at
  most 500 (a larger page size is refused with adminLimitExceeded).

Disabled users are locked by the ``ppolicy`` overlay: ``disable(uid)`` sets
``pwdAccountLockedTime: 000001010000Z`` (locked until an administrator unlocks), so their
bind fails with invalidCredentials. The service account finds them with the filter
``DISABLED_FILTER`` = ``(pwdAccountLockedTime=*)``; the attribute is operational, so a
client must ask for it by name (or ``+``) to see its value.

No Django here: tests and benchmarks start it before (and without) the project's settings.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from devtools.certificates import loopback_certificates
from devtools.notary import _tail, _write
from devtools.ports import free_port

SUFFIX = "dc=example,dc=org"
PEOPLE_BASE = f"ou=people,{SUFFIX}"
GROUPS_BASE = f"ou=groups,{SUFFIX}"
SERVICE_DN = f"cn=gatehouse,ou=services,{SUFFIX}"
POLICY_DN = f"cn=default,ou=policies,{SUFFIX}"
DISABLED_FILTER = "(pwdAccountLockedTime=*)"
# ppolicy's value for "locked until an administrator removes it".
PERMANENT_LOCK = "000001010000Z"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# Debian puts slapd and slapadd in /usr/sbin, which is not on an ordinary user's PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
READY_TIMEOUT = 10.0
PORT_ATTEMPTS = 5
# Unix socket paths are limited to 107 bytes.
MAX_SOCKET_PATH = 100
SAFE_NAME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class SlapdError(RuntimeError):
    """slapd or one of its tools failed; the message says why (with the log tail if any)."""


def installed() -> bool:
    """Whether slapd and the client tools this module runs are installed."""
    return all(_binary(name) for name in ("slapd", "slapadd", "ldapmodify", "ldapsearch"))


@dataclass(frozen=True)
class Person:
    """An ``inetOrgPerson``; ``full_name``'s last word becomes ``sn``, the rest ``givenName``."""

    uid: str
    password: str = field(repr=False)
    full_name: str
    email: str

    def __post_init__(self) -> None:
        _check_name(self.uid)


@dataclass(frozen=True)
class Group:
    """A ``groupOfNames`` whose members are people's uids."""

    cn: str
    members: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_name(self.cn)
        for uid in self.members:
            _check_name(uid)


def generated(
    users: int, groups: int, groups_per_user: int = 3
) -> tuple[list[Person], list[Group]]:
    """``users`` people ``user0001``… (password ``<uid>-pass``) spread over ``groups`` groups.

    Each person is in ``groups_per_user`` distinct groups, assigned round-robin so every
    group gets about the same number of members; the same arguments give the same data.
    """
    if groups_per_user > groups:
        raise ValueError("groups_per_user cannot exceed the number of groups")
    width = len(str(max(users, 1)))
    people = [
        Person(
            uid=f"user{n:0{width}d}",
            password=f"user{n:0{width}d}-pass",
            full_name=f"User Number{n}",
            email=f"user{n:0{width}d}@example.org",
        )
        for n in range(1, users + 1)
    ]
    members: list[list[str]] = [[] for _ in range(groups)]
    for index, person in enumerate(people):
        for k in range(groups_per_user):
            members[(index * groups_per_user + k) % groups].append(person.uid)
    group_width = len(str(max(groups, 1)))
    return people, [
        Group(cn=f"group{n + 1:0{group_width}d}", members=uids) for n, uids in enumerate(members)
    ]


@dataclass
class Slapd:
    """One slapd with its certificates, config, data and log in ``state_dir``.

    ``people`` and ``groups`` are loaded on the first ``start()`` and are what ``reset()``
    restores. Changes go through ``modify()`` as the root DN, over the ldapi socket with
    SASL EXTERNAL: no root password exists.
    """

    suffix: ClassVar[str] = SUFFIX
    people_base: ClassVar[str] = PEOPLE_BASE
    groups_base: ClassVar[str] = GROUPS_BASE
    service_dn: ClassVar[str] = SERVICE_DN
    disabled_filter: ClassVar[str] = DISABLED_FILTER

    state_dir: Path
    ldap_port: int
    ldaps_port: int
    people: list[Person] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    retry_ports: bool = False  # pick new ports when one is taken (first start only)
    service_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _has_started: bool = field(default=False, init=False, repr=False)

    @classmethod
    def ephemeral(
        cls, people: list[Person] | None = None, groups: list[Group] | None = None
    ) -> Slapd:
        """A throwaway directory on free ports; ``discard()`` removes it."""
        return cls(
            state_dir=Path(tempfile.mkdtemp(prefix="slapd-")),
            ldap_port=free_port(),
            ldaps_port=free_port(),
            people=list(people or []),
            groups=list(groups or []),
            retry_ports=True,
        )

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        """The PEM CA certificate that signed the server's certificate."""
        return self.state_dir / "certs" / "ca.crt"

    @property
    def ldapi_url(self) -> str:
        return "ldapi://" + quote(str(self._socket_path), safe="")

    @property
    def root_dn(self) -> str:
        """The identity SASL EXTERNAL gives this process on the socket, made the root DN."""
        return f"gidNumber={os.getegid()}+uidNumber={os.geteuid()},cn=peercred,cn=external,cn=auth"

    def person_dn(self, uid: str) -> str:
        _check_name(uid)
        return f"uid={uid},{PEOPLE_BASE}"

    def group_dn(self, cn: str) -> str:
        _check_name(cn)
        return f"cn={cn},{GROUPS_BASE}"

    def start(self) -> None:
        """Write what is missing (certificates, config, data), then run slapd until it answers.

        On failure slapd is stopped again and the error carries its log.
        """
        if self.alive():
            return
        if len(str(self._socket_path)) > MAX_SOCKET_PATH:
            raise SlapdError(f"path too long for the ldapi socket: {self._socket_path}")
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._write_certificates()
            self._write_config()
            if not (self.state_dir / "data" / "data.mdb").exists():
                self._load()
            for attempt in range(1, PORT_ATTEMPTS + 1):
                try:
                    self._run_slapd()
                    break
                except _PortTaken:
                    self.stop()
                    if self._has_started or not self.retry_ports or attempt == PORT_ATTEMPTS:
                        raise
                    self.ldap_port, self.ldaps_port = free_port(), free_port()
        except BaseException:
            self.stop()
            raise
        self._has_started = True

    def stop(self) -> None:
        """SIGTERM and wait: slapd closes its database cleanly, so data survives a restart."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def discard(self) -> None:
        """Stop and delete the state directory: a throwaway directory's teardown."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The end of slapd's log (errors only), for error messages."""
        if self._process is None:
            state = "not running"
        elif self._process.poll() is None:
            state = "running"
        else:
            state = f"exited with {self._process.returncode}"
        text = self._log_path.read_text(errors="replace") if self._log_path.exists() else ""
        return f"--- slapd ({state}), {self._log_path} ---\n{_tail(text, lines)}"

    def modify(self, ldif: str) -> None:
        """Apply LDIF change records (``changetype: add|modify|delete|modrdn``) as the root DN."""
        self._tool("ldapmodify", "-Q", "-Y", "EXTERNAL", "-H", self.ldapi_url, stdin=ldif)

    def disable(self, uid: str) -> None:
        """Lock the account: binds fail and ``DISABLED_FILTER`` finds it.

        ppolicy lifts the lock when an administrator sets a new password.
        """
        self.modify(self._lock_change(uid, locked=True))

    def enable(self, uid: str) -> None:
        """Unlock the account (a no-op when it is not locked)."""
        self.modify(self._lock_change(uid, locked=False))

    def add_to_group(self, uid: str, group_cn: str) -> None:
        members = self._members(group_cn)
        members.add(self.person_dn(uid))
        self.modify(self._members_change(group_cn, members))

    def remove_from_group(self, uid: str, group_cn: str) -> None:
        """Take the person out; the last one out leaves the group's own DN as its member."""
        members = self._members(group_cn)
        members.discard(self.person_dn(uid))
        self.modify(self._members_change(group_cn, members))

    def delete_person(self, uid: str) -> None:
        """Delete the entry, and its memberships first (as the ``refint`` overlay would)."""
        dn = self.person_dn(uid)
        changes = []
        for entry in self._search(GROUPS_BASE, "one", f"(member={dn})", "cn"):
            group_cn = entry["cn"][0]
            changes.append(self._members_change(group_cn, self._members(group_cn) - {dn}))
        changes.append(f"dn: {dn}\nchangetype: delete\n")
        self.modify("\n".join(changes))

    def reset(self) -> None:
        """Restore ``people`` and ``groups`` as first loaded, keeping entries that still exist.

        Other entries under the people and groups bases are deleted; existing people get their
        attributes and password back and are unlocked; groups get their members back.
        """
        people_dns = {e["dn"][0] for e in self._search(PEOPLE_BASE, "one", "(uid=*)", "1.1")}
        group_dns = {e["dn"][0] for e in self._search(GROUPS_BASE, "one", "(cn=*)", "1.1")}
        wanted_people = {self.person_dn(p.uid): p for p in self.people}
        wanted_groups = {self.group_dn(g.cn): g for g in self.groups}
        changes = [
            f"dn: {dn}\nchangetype: delete\n"
            for dn in sorted(group_dns - wanted_groups.keys())
            + sorted(people_dns - wanted_people.keys())
        ]
        for dn, person in wanted_people.items():
            if dn in people_dns:
                # Unlock first, on its own: a new password makes ppolicy delete the lock itself,
                # which fails once the same change has removed it.
                changes.append(self._lock_change(person.uid, locked=False))
                attributes = _person_attributes(person)
                del attributes["objectClass"], attributes["uid"]
                lines = [f"dn: {dn}", "changetype: modify"]
                for name, values in attributes.items():
                    lines += [f"replace: {name}", *(_ldif_line(name, v) for v in values), "-"]
                changes.append("\n".join(lines) + "\n")
            else:
                changes.append(_entry_ldif(dn, _person_attributes(person), changetype="add"))
        for dn, group in wanted_groups.items():
            if dn in group_dns:
                members = {self.person_dn(uid) for uid in group.members}
                changes.append(self._members_change(group.cn, members))
            else:
                changes.append(_entry_ldif(dn, self._group_attributes(group), changetype="add"))
        if changes:
            self.modify("\n".join(changes))

    @property
    def _socket_path(self) -> Path:
        return self.state_dir / "ldapi"

    @property
    def _log_path(self) -> Path:
        return self.state_dir / "slapd.log"

    @property
    def _config_path(self) -> Path:
        return self.state_dir / "slapd.conf"

    def _lock_change(self, uid: str, *, locked: bool) -> str:
        """A replace with no value removes the attribute, and is no error when it is absent."""
        value = f"pwdAccountLockedTime: {PERMANENT_LOCK}\n" if locked else ""
        return (
            f"dn: {self.person_dn(uid)}\nchangetype: modify\n"
            f"replace: pwdAccountLockedTime\n{value}-\n"
        )

    def _members(self, group_cn: str) -> set[str]:
        found = self._search(self.group_dn(group_cn), "base", "(objectClass=*)", "member")
        if not found:
            raise SlapdError(f"no group {group_cn!r}")
        return set(found[0].get("member", [])) - {self.group_dn(group_cn)}

    def _members_change(self, group_cn: str, member_dns: set[str]) -> str:
        values = sorted(member_dns) or [self.group_dn(group_cn)]
        lines = [f"dn: {self.group_dn(group_cn)}", "changetype: modify", "replace: member"]
        return "\n".join([*lines, *(f"member: {v}" for v in values), "-"]) + "\n"

    def _group_attributes(self, group: Group) -> dict[str, list[str]]:
        members = [self.person_dn(uid) for uid in dict.fromkeys(group.members)]
        return {
            "objectClass": ["groupOfNames"],
            "cn": [group.cn],
            "member": members or [self.group_dn(group.cn)],
        }

    def _search(
        self, base: str, scope: str, search_filter: str, *attributes: str
    ) -> list[dict[str, list[str]]]:
        """Entries as ``{attribute: values}`` (``"dn"`` included), read as the root DN."""
        output = self._tool(
            "ldapsearch", "-LLL", "-Q", "-Y", "EXTERNAL", "-H", self.ldapi_url,
            "-o", "ldif-wrap=no", "-b", base, "-s", scope, search_filter, *attributes,
            ok_codes=(0, 32),  # 32: no such object
        )  # fmt: skip
        return _parse_ldif(output)

    def _tool(
        self, name: str, *args: str, stdin: str = "", ok_codes: tuple[int, ...] = (0,)
    ) -> str:
        result = subprocess.run(  # noqa: S603 - a known binary, arguments built here, no shell
            [_binary(name) or name, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in ok_codes:
            raise SlapdError(f"{name} failed ({result.returncode}): {_tail(result.stderr)}")
        return result.stdout

    def _run_slapd(self) -> None:
        """Run slapd in the foreground (``-d none``: errors only, on stderr) and wait for it."""
        listeners = f"{self.ldap_url}/ {self.ldaps_url}/ {self.ldapi_url}"
        start_size = self._log_path.stat().st_size if self._log_path.exists() else 0
        with open(self._log_path, "ab") as log:
            # Own process group: Ctrl-C in a terminal reaches only us, and we stop it.
            self._process = subprocess.Popen(  # noqa: S603 - a known binary, our own config
                [_require_binary("slapd"), "-d", "none", "-f", str(self._config_path),
                 "-h", listeners],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, process_group=0,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                with open(self._log_path, "rb") as f:
                    f.seek(start_size)
                    output = f.read().decode(errors="replace")
                if "Address already in use" in output:
                    raise _PortTaken(f"slapd: port in use:\n{_tail(output)}")
                raise SlapdError(f"slapd exited ({self._process.returncode}):\n{_tail(output)}")
            if time.monotonic() > deadline:
                raise SlapdError(f"slapd not ready after {READY_TIMEOUT}s:\n{self.log_tail()}")
            time.sleep(0.01)

    def _answers(self) -> bool:
        """All three listeners accept connections.

        slapd binds every listener before it listens on any, so an accepting ldapi socket
        (ours alone) means the TCP ports are slapd's, not another process's.
        """
        try:
            with socket.socket(socket.AF_UNIX) as unix:
                unix.settimeout(1)
                unix.connect(str(self._socket_path))
            for port in (self.ldap_port, self.ldaps_port):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def _write_config(self) -> None:
        """slapd.conf; the ports are on slapd's command line, so it is written once."""
        if self._config_path.exists():
            return
        certs = self.state_dir / "certs"
        schemas = ("core", "cosine", "inetorgperson")
        config = "\n".join([
            *(f"include {SCHEMA_DIR / name}.schema" for name in schemas),
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            "moduleload ppolicy",
            f"pidfile {self.state_dir / 'slapd.pid'}",
            f"argsfile {self.state_dir / 'slapd.args'}",
            "sizelimit 500",
            f"TLSCACertificateFile {certs / 'ca.crt'}",
            f"TLSCertificateFile {certs / 'server.crt'}",
            f"TLSCertificateKeyFile {certs / 'server.key'}",
            # The root DSE and the schema, which clients read to learn what the server can do.
            'access to dn.base="" by * read',
            'access to dn.base="cn=Subschema" by * read',
            "",
            "database mdb",
            "maxsize 1073741824",
            f'suffix "{SUFFIX}"',
            f'rootdn "{self.root_dn}"',
            f"directory {self.state_dir / 'data'}",
            "dbnosync",
            "index objectClass eq",
            "index uid,cn,mail eq",
            "index member eq",
            "index pwdAccountLockedTime pres",
            f'limits dn.exact="{SERVICE_DN}" size.soft=500 size.hard=unlimited'
            " size.pr=500 size.prtotal=unlimited",
            "access to attrs=userPassword by anonymous auth by * none",
            f'access to dn.subtree="{GROUPS_BASE}"',
            f'    by dn.exact="{SERVICE_DN}" read',
            "    by users read",
            "    by * none",
            f'access to dn.subtree="{SUFFIX}"',
            f'    by dn.exact="{SERVICE_DN}" read',
            "    by self read",
            "    by * none",
            "overlay ppolicy",
            f'ppolicy_default "{POLICY_DN}"',
            "",
        ])  # fmt: skip
        _write(self._config_path, config.encode(), 0o600)

    def _load(self) -> None:
        """slapadd the whole tree before slapd runs: far faster than adding over LDAP."""
        data = self.state_dir / "data"
        data.mkdir(mode=0o700, exist_ok=True)
        entries = [
            _entry_ldif(
                SUFFIX,
                {"objectClass": ["dcObject", "organization"], "dc": ["example"], "o": ["Example"]},
            ),
            *(
                _entry_ldif(
                    f"ou={ou},{SUFFIX}", {"objectClass": ["organizationalUnit"], "ou": [ou]}
                )
                for ou in ("people", "groups", "services", "policies")
            ),
            # ppolicy honours pwdAccountLockedTime only under a policy with pwdLockout; without
            # pwdMaxFailure, failed binds lock nobody.
            _entry_ldif(
                POLICY_DN,
                {
                    "objectClass": ["device", "pwdPolicy"],
                    "cn": ["default"],
                    "pwdAttribute": ["userPassword"],
                    "pwdLockout": ["TRUE"],
                },
            ),
            _entry_ldif(
                SERVICE_DN,
                {
                    "objectClass": ["organizationalRole", "simpleSecurityObject"],
                    "cn": ["gatehouse"],
                    "userPassword": [_ssha(self.service_password)],
                },
            ),
            *(_entry_ldif(self.person_dn(p.uid), _person_attributes(p)) for p in self.people),
            *(_entry_ldif(self.group_dn(g.cn), self._group_attributes(g)) for g in self.groups),
        ]
        ldif = self.state_dir / "initial.ldif"
        _write(ldif, "\n".join(entries).encode(), 0o600)
        try:
            self._tool("slapadd", "-q", "-f", str(self._config_path), "-l", str(ldif))
        except SlapdError:
            shutil.rmtree(data, ignore_errors=True)
            raise
        finally:
            ldif.unlink()

    def _write_certificates(self) -> None:
        """A CA and slapd's server certificate (DNS:localhost, IP:127.0.0.1); reused if present."""
        loopback_certificates(
            self.state_dir / "certs", ca_name="gatehouse-test-ldap-ca", server_name="localhost"
        )


class _PortTaken(SlapdError):
    """slapd could not bind a port; with chosen-free ports, pick others and retry."""


def _binary(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def _require_binary(name: str) -> str:
    path = _binary(name)
    if path is None:
        raise SlapdError(
            f"{name} not found; install it with: sudo apt-get install slapd ldap-utils"
        )
    return path


def _check_name(name: str) -> None:
    """uids and group names go into DNs and filters unescaped: keep them to safe characters."""
    if not name or not set(name) <= SAFE_NAME:
        raise ValueError(f"not a simple name (letters, digits, '.', '_', '-'): {name!r}")


def _person_attributes(person: Person) -> dict[str, list[str]]:
    *given, surname = person.full_name.split() or [person.uid]
    attributes = {
        "objectClass": ["inetOrgPerson"],
        "uid": [person.uid],
        "cn": [person.full_name],
        "sn": [surname],
        "mail": [person.email],
        "userPassword": [_ssha(person.password)],
    }
    if given:
        attributes["givenName"] = [" ".join(given)]
    return attributes


def _ssha(password: str) -> str:
    """OpenLDAP's salted SHA-1 scheme: weak, but the strongest slapd checks without a module."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt, usedforsecurity=False).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _entry_ldif(dn: str, attributes: dict[str, list[str]], changetype: str | None = None) -> str:
    lines = [f"dn: {dn}"]
    if changetype:
        lines.append(f"changetype: {changetype}")
    lines += [_ldif_line(name, value) for name, values in attributes.items() for value in values]
    return "\n".join(lines) + "\n"


def _ldif_line(name: str, value: str) -> str:
    """``name: value``, or base64 (``name:: …``) when LDIF cannot carry the value as is."""
    plain = value.isascii() and value.isprintable() and not value.endswith(" ")
    if plain and not value.startswith((" ", ":", "<")):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _parse_ldif(text: str) -> list[dict[str, list[str]]]:
    """Unwrapped LDIF (``ldif-wrap=no``) as dicts; base64 values decoded."""
    entries: list[dict[str, list[str]]] = []
    for block in text.strip().split("\n\n"):
        entry: dict[str, list[str]] = {}
        for line in block.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(":"):
                value = base64.b64decode(value[1:].strip()).decode()
            entry.setdefault(name, []).append(value.strip())
        if entry:
            entries.append(entry)
    return entries
