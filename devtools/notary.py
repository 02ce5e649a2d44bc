"""Start and stop a notary-signer + notary-server pair for development and tests.

This follows the production setup of docs/deployment.md §7: notary-server with a remote
trust service (notary-signer over mutual TLS), both storing in PostgreSQL. The simpler
``local`` trust service and ``memory`` storage crash under concurrent requests and lose
keys on restart.

Two ways to use it:

* ``NotaryStack.ephemeral()`` for tests: a temporary directory, free ports, databases with a
  random suffix; ``discard()`` removes all of it.
* ``python -m devtools.notary --state-dir var/notary`` for ``make run``: fixed ports and
  database names, state kept across restarts so repositories survive.

No Django here: this module must run before (and without) the project's settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

from devtools.ports import free_port

LOCAL_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432"
SIGNER_ALIAS = "gatehouse"  # the signer reads its passphrase from NOTARY_SIGNER_GATEHOUSE
READY_TIMEOUT = 10.0
PORT_ATTEMPTS = 5
CERT_FILES = ("ca.crt", "signer.crt", "signer.key", "server.crt", "server.key")
# Unix socket paths are limited to 107 bytes; leave room for the ".lock" sibling.
MAX_SOCKET_PATH = 100
# The development server: server keys in memory, metadata in memory. It needs
# neither notary-signer nor PostgreSQL, and it crashes under concurrent clients
# (docs/notary-protocol.md, "notary-server's surprises").
DEVELOPMENT_CONFIG: dict[str, Any] = {
    "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
    "storage": {"backend": "memory"},
}

# notary's migrations (server 0001 + 0002, signer 0001); neither binary creates its tables.
SERVER_SCHEMA = """
CREATE TABLE "tuf_files" ("id" serial PRIMARY KEY, "created_at" timestamp NULL DEFAULT NULL,
  "updated_at" timestamp NULL DEFAULT NULL, "deleted_at" timestamp NULL DEFAULT NULL,
  "gun" varchar(255) NOT NULL, "role" varchar(255) NOT NULL, "version" integer NOT NULL,
  "data" bytea NOT NULL, "sha256" char(64) DEFAULT NULL, UNIQUE ("gun","role","version"));
CREATE INDEX tuf_files_sha256_idx ON tuf_files(sha256);
CREATE TABLE "change_category" ("category" VARCHAR(20) PRIMARY KEY);
INSERT INTO "change_category" VALUES ('update'), ('deletion');
CREATE TABLE "changefeed" ("id" serial PRIMARY KEY,
  "created_at" timestamp DEFAULT CURRENT_TIMESTAMP,
  "gun" varchar(255) NOT NULL, "version" integer NOT NULL, "sha256" CHAR(64) DEFAULT NULL,
  "category" VARCHAR(20) NOT NULL DEFAULT 'update' REFERENCES "change_category");
CREATE INDEX "idx_changefeed_gun" ON "changefeed" ("gun");
"""
SIGNER_SCHEMA = """
CREATE TABLE "private_keys" ("id" serial PRIMARY KEY, "created_at" timestamp NULL DEFAULT NULL,
  "updated_at" timestamp NULL DEFAULT NULL, "deleted_at" timestamp NULL DEFAULT NULL,
  "key_id" varchar(255) NOT NULL, "encryption_alg" varchar(255) NOT NULL,
  "keywrap_alg" varchar(255) NOT NULL, "algorithm" varchar(50) NOT NULL,
  "passphrase_alias" varchar(50) NOT NULL, "public" bytea NOT NULL, "private" bytea NOT NULL,
  "gun" varchar(255) NOT NULL, "role" varchar(255) NOT NULL,
  "last_used" timestamp NULL DEFAULT NULL,
  CONSTRAINT "key_id" UNIQUE ("key_id"), CONSTRAINT "key_id_2" UNIQUE ("key_id","algorithm"));
"""


class NotaryStackError(RuntimeError):
    """The stack could not be started; the message says why (with the log tail if any)."""


def ensure_notary_installed() -> None:
    """Install the Debian package ``notary`` when its binaries are missing, if we may."""
    if shutil.which("notary-server"):
        return
    install = ["apt-get", "install", "-y", "notary"]
    if os.geteuid() == 0:
        command = install
    elif shutil.which("sudo") and _succeeds(["sudo", "-n", "true"]):
        command = ["sudo", "-n", *install]
    else:
        raise NotaryStackError(
            "notary-server not found; install it with: sudo apt-get install notary"
        )
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        check=False,
    )
    if result.returncode != 0 or not shutil.which("notary-server"):
        raise NotaryStackError(f"`{' '.join(command)}` failed:\n{_tail(result.stderr)}")


def postgres_answers(url: str) -> bool:
    """Whether the PostgreSQL at ``url`` accepts a connection now."""
    try:
        with psycopg.connect(database_url(url, "postgres"), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def database_url(base: str, database: str) -> str:
    """``base`` pointed at ``database``, with ``sslmode=disable`` unless set.

    notary's driver (lib/pq) defaults to ``sslmode=require`` and exits when the server has
    no SSL; the query string also carries ``host=<socket dir>`` for a private cluster.
    """
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    return urlunsplit(parts._replace(path=f"/{database}", query=urlencode(query, safe="/")))


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: PATH, else Debian's newest versioned directory."""
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of our own, on a Unix socket only.

    Used when no PostgreSQL server answers (docs/notary-protocol.md, "notary-server's surprises").
    Its socket lives in its data directory, so that directory's path must stay short.
    PostgreSQL refuses to run as root, so as root the cluster runs as an unprivileged user
    (``postgres`` if it exists).
    """

    directory: Path

    @property
    def url(self) -> str:
        return f"postgres://postgres@/?host={self.directory}"

    def start(self) -> None:
        """Create the cluster on first use, then start it (or adopt a running one)."""
        if postgres_bin_dir() is None:
            raise NotaryStackError(
                "PostgreSQL is not running and its server binaries (initdb, pg_ctl) are not "
                "installed: start PostgreSQL or run: sudo apt-get install postgresql"
            )
        if len(f"{self.directory.resolve()}/.s.PGSQL.5432") > MAX_SOCKET_PATH:
            raise NotaryStackError(f"path too long for a PostgreSQL socket: {self.directory}")
        if not (self.directory / "PG_VERSION").exists():
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._hand_over_directory()
            self._run("initdb", "-D", self.directory, "-U", "postgres", "--auth=trust", "--no-sync")
        if self._pg_ctl("status", check=False).returncode == 0:
            return
        options = f"-k {self.directory} -c listen_addresses=''"
        self._pg_ctl("-l", self.directory / "server.log", "-o", options, "-w", "start")

    def stop(self) -> None:
        if (self.directory / "postmaster.pid").exists():
            self._pg_ctl("-m", "fast", "-w", "stop", check=False)

    def _pg_ctl(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", "-D", self.directory, *args, check=check)

    def _run(
        self, program: str, *args: str | Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program from its bin directory, as the cluster's user."""
        binary = Path(postgres_bin_dir() or "") / program
        command = [*_unprivileged_prefix(), str(binary), *map(str, args)]
        # The server inherits stdout from pg_ctl: keep it off our pipes or run() never returns.
        result = subprocess.run(  # noqa: S603 - argument list built here, no shell
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise NotaryStackError(f"{program} failed: {_tail(result.stderr)}")
        return result

    def _hand_over_directory(self) -> None:
        """As root, give the data directory to the user PostgreSQL will run as.

        Its parent gets search permission only (0711), so that user can reach it without
        being able to list the certificates and passphrase beside it (all 0600 anyway).
        """
        if os.geteuid() != 0:
            return
        user = pwd.getpwnam(_cluster_user())
        os.chown(self.directory, user.pw_uid, user.pw_gid)
        parent = self.directory.parent
        parent.chmod(parent.stat().st_mode & 0o777 | 0o011)


@dataclass
class NotaryStack:
    """notary-signer + notary-server on PostgreSQL, with their state in ``state_dir``.

    ``state_dir`` keeps the certificates, the signer's passphrase (its keys are encrypted
    with it), the configs and logs. ``postgres_url`` is a server such as
    ``postgres://postgres@127.0.0.1:5432``; ``None`` means a private cluster in
    ``state_dir/pg``. Databases and schema are created only if missing, so a stack started
    again with the same arguments serves the same repositories.

    ``server_config`` holds extra top-level sections for notary-server's config, such as
    ``"auth"`` (docs/notary-protocol.md, "Token authentication"); a section given there
    replaces the default one. With ``DEVELOPMENT_CONFIG`` (``NotaryStack.development()``)
    only notary-server runs: no signer, no PostgreSQL.
    """

    state_dir: Path
    server_port: int
    signer_port: int
    server_db: str = "gatehouse_notary_server"
    signer_db: str = "gatehouse_notary_signer"
    postgres_url: str | None = LOCAL_POSTGRES_URL
    retry_ports: bool = False  # pick new ports when one is taken (only for chosen-free ports)
    server_config: dict[str, Any] = field(default_factory=dict)
    _cluster: PrivateCluster | None = field(default=None, init=False, repr=False)
    _signer: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _server: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @classmethod
    def ephemeral(
        cls,
        postgres_url: str | None = LOCAL_POSTGRES_URL,
        *,
        server_config: dict[str, Any] | None = None,
    ) -> NotaryStack:
        """A throwaway stack: temporary directory, free ports, uniquely named databases.

        The directory is made with ``mkdtemp`` under the system temp dir, which keeps a
        private cluster's socket path short and reachable by its unprivileged user.
        """
        suffix = secrets.token_hex(4)
        return cls(
            state_dir=Path(tempfile.mkdtemp(prefix="notary-")),
            server_port=free_port(),
            signer_port=free_port(),
            server_db=f"notary_server_{suffix}",
            signer_db=f"notary_signer_{suffix}",
            postgres_url=postgres_url,
            retry_ports=True,
            server_config=dict(server_config or {}),
        )

    @classmethod
    def development(cls) -> NotaryStack:
        """A throwaway notary-server alone, ``local`` trust and ``memory`` storage.

        For single-client experiments and benchmarks only (docs/notary-protocol.md,
        "notary-server's surprises").
        """
        return cls.ephemeral(None, server_config=DEVELOPMENT_CONFIG)

    @property
    def uses_signer(self) -> bool:
        trust = self.server_config.get("trust_service", {"type": "remote"})
        return trust.get("type") == "remote"

    @property
    def uses_postgres(self) -> bool:
        storage = self.server_config.get("storage", {"backend": "postgres"})
        return self.uses_signer or storage.get("backend") == "postgres"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def start(self) -> None:
        """Start PostgreSQL if private, prepare certificates and databases, then signer and server.

        On failure everything started here is stopped again and the error carries the logs.
        """
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            pg_url = ""
            if self.uses_postgres:
                pg_url = self._start_postgres()
                self._create_databases(pg_url)
            self._write_certificates()
            for attempt in range(1, PORT_ATTEMPTS + 1):
                try:
                    self._start_processes(pg_url)
                    return
                except _PortTaken:
                    self._stop_processes()
                    if not self.retry_ports or attempt == PORT_ATTEMPTS:
                        raise
                    self.server_port, self.signer_port = free_port(), free_port()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server, then the signer, then a private PostgreSQL (reverse of start)."""
        self._stop_processes()
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    @property
    def server_process(self) -> subprocess.Popen:
        """notary-server's process, for tests that pause or kill it."""
        if self._server is None:
            raise NotaryStackError("notary-server is not running")
        return self._server

    def alive(self) -> bool:
        """Both processes are still running: an exit of either one is a crash
        (docs/notary-protocol.md, "notary-server's surprises")."""
        processes = (self._signer, self._server) if self.uses_signer else (self._server,)
        return all(p is not None and p.poll() is None for p in processes)

    def log_tail(self, lines: int = 20) -> str:
        """The end of both logs, for error messages (Go crashes are plain text on stderr)."""
        parts = []
        for role, process in (("signer", self._signer), ("server", self._server)):
            if process is None:
                state = "not running"
            elif process.poll() is None:
                state = "running"
            else:
                state = f"exited with {process.returncode}"
            path = self.state_dir / f"{role}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- notary-{role} ({state}), {path} ---\n{_tail(text, lines)}")
        return "\n".join(parts)

    def drop_databases(self) -> None:
        """Drop both databases (a private cluster is deleted as a whole). Call after stop()."""
        if not self.uses_postgres:
            return
        if self.postgres_url is None:
            shutil.rmtree(self.state_dir / "pg", ignore_errors=True)
            return
        with psycopg.connect(database_url(self.postgres_url, "postgres"), autocommit=True) as db:
            for name in (self.server_db, self.signer_db):
                db.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def discard(self) -> None:
        """Stop, drop the databases, delete the state directory: a throwaway stack's teardown."""
        self.stop()
        self.drop_databases()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _start_postgres(self) -> str:
        if self.postgres_url is not None:
            return self.postgres_url
        self._cluster = PrivateCluster(self.state_dir / "pg")
        self._cluster.start()
        return self._cluster.url

    def _write_certificates(self) -> None:
        """A CA, the signer's server certificate and notary-server's client certificate.

        Both leaf certificates carry DNS:localhost and IP:127.0.0.1 as SAN: Go rejects a
        certificate that names its host in the Common Name only. Reused when all exist.
        """
        certs = self.state_dir / "certs"
        if all((certs / name).exists() for name in CERT_FILES):
            return
        certs.mkdir(mode=0o700, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("gatehouse-notary-ca")
        ca = (
            _certificate_builder(ca_name, ca_name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        _write(certs / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        _write_key(certs / "ca.key", ca_key)
        for role in ("signer", "server"):
            key = ec.generate_private_key(ec.SECP256R1())
            san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            cert = (
                _certificate_builder(_name(f"notary-{role}"), ca_name, key.public_key())
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(digital_signature=True), critical=True)
                .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            _write_key(certs / f"{role}.key", key)
            _write(certs / f"{role}.crt", cert.public_bytes(serialization.Encoding.PEM))

    def _create_databases(self, pg_url: str) -> None:
        """Create each database and its schema unless present (neither binary can)."""
        try:
            with psycopg.connect(database_url(pg_url, "postgres"), autocommit=True) as db:
                for name in (self.server_db, self.signer_db):
                    if not db.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", [name]
                    ).fetchone():
                        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            for name, table, schema in (
                (self.server_db, "tuf_files", SERVER_SCHEMA),
                (self.signer_db, "private_keys", SIGNER_SCHEMA),
            ):
                with psycopg.connect(database_url(pg_url, name)) as db:
                    if db.execute("SELECT to_regclass(%s)", [table]).fetchone() == (None,):
                        db.execute(schema.encode())
        except psycopg.OperationalError as error:
            raise NotaryStackError(f"PostgreSQL at {pg_url}: {error}".strip()) from error

    def _start_processes(self, pg_url: str) -> None:
        """Signer first (the server exits if it cannot reach it), each waited for in turn."""
        self._write_configs(pg_url)
        if self.uses_signer:
            passphrase = self._passphrase()
            env = {**os.environ, f"NOTARY_SIGNER_{SIGNER_ALIAS.upper()}": passphrase}
            self._signer = self._spawn("notary-signer", "signer", env)
            self._wait(self._signer, "signer", self._signer_ready)
        self._server = self._spawn("notary-server", "server", dict(os.environ))
        self._wait(self._server, "server", self._server_ready)

    def _stop_processes(self) -> None:
        for attr in ("_server", "_signer"):
            process: subprocess.Popen[bytes] | None = getattr(self, attr)
            if process is not None and process.poll() is None:
                process.terminate()  # SIGTERM: both exit at once, there is nothing to drain
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            setattr(self, attr, None)

    def _write_configs(self, pg_url: str) -> None:
        """Relative paths in the configs resolve against the config file's directory."""
        signer = {
            "server": {
                "grpc_addr": f"127.0.0.1:{self.signer_port}",
                "tls_cert_file": "certs/signer.crt",
                "tls_key_file": "certs/signer.key",
                "client_ca_file": "certs/ca.crt",
            },
            "storage": {
                "backend": "postgres",
                "default_alias": SIGNER_ALIAS,
                "db_url": database_url(pg_url, self.signer_db),
            },
            "logging": {"level": "error"},
        }
        server = {
            "server": {"http_addr": f"127.0.0.1:{self.server_port}"},
            "trust_service": {
                "type": "remote",
                "hostname": "127.0.0.1",
                "port": str(self.signer_port),
                "key_algorithm": "ecdsa",
                "tls_ca_file": "certs/ca.crt",
                "tls_client_cert": "certs/server.crt",
                "tls_client_key": "certs/server.key",
            },
            "storage": {"backend": "postgres", "db_url": database_url(pg_url, self.server_db)},
            "logging": {"level": "error"},
            **self.server_config,
        }
        # 0600: a database URL may carry a password.
        if self.uses_signer:
            _write(self.state_dir / "signer.json", json.dumps(signer, indent=2).encode(), 0o600)
        _write(self.state_dir / "server.json", json.dumps(server, indent=2).encode(), 0o600)

    def _passphrase(self) -> str:
        """The signer's key-encryption passphrase, made once: keys stored with it need it back."""
        path = self.state_dir / "signer.pass"
        if not path.exists():
            _write(path, secrets.token_urlsafe(24).encode(), 0o600)
        return path.read_text().strip()

    def _spawn(self, binary: str, role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Own process group: Ctrl-C in `make run` reaches only us, and we stop them in order.
        with open(self.state_dir / f"{role}.log", "ab") as log:
            return subprocess.Popen(  # noqa: S603 - fixed binary and our own config path
                [binary, "-config", str(self.state_dir / f"{role}.json")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, process_group=0,
            )  # fmt: skip

    def _wait(self, process: subprocess.Popen[bytes], role: str, ready: Callable[[], bool]) -> None:
        """Poll ``ready`` until it passes; fail fast with the log if the process exits."""
        log = self.state_dir / f"{role}.log"
        start_size = log.stat().st_size
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            if process.poll() is not None:
                with open(log, "rb") as f:
                    f.seek(start_size)
                    output = f.read().decode(errors="replace")
                if "address already in use" in output:
                    raise _PortTaken(f"notary-{role}: port in use:\n{_tail(output)}")
                raise NotaryStackError(
                    f"notary-{role} exited ({process.returncode}):\n{_tail(output)}"
                )
            if time.monotonic() > deadline:
                raise NotaryStackError(
                    f"notary-{role} not ready after {READY_TIMEOUT}s:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _signer_ready(self) -> bool:
        """Send the HTTP/2 preface with notary-server's client cert; expect a SETTINGS frame.

        A TLS handshake alone proves too little: under TLS 1.3 a rejected client
        certificate shows only on the first read.
        """
        certs = self.state_dir / "certs"
        context = ssl.create_default_context(cafile=certs / "ca.crt")
        context.load_cert_chain(certs / "server.crt", certs / "server.key")
        context.set_alpn_protocols(["h2"])
        try:
            with (
                socket.create_connection(("127.0.0.1", self.signer_port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0")
                return len(tls.recv(9)) == 9
        except OSError:
            return False

    def _server_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_notary_server/health", timeout=1) as response:  # noqa: S310 - our own http URL
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


class _PortTaken(NotaryStackError):
    """A process could not bind its port; with chosen-free ports, pick others and retry."""


def _cluster_user() -> str:
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return "nobody"


def _unprivileged_prefix() -> list[str]:
    """initdb and postgres refuse to run as root: drop to the cluster's user first."""
    return ["runuser", "-u", _cluster_user(), "--"] if os.geteuid() == 0 else []


def _succeeds(command: list[str]) -> bool:
    return subprocess.run(command, capture_output=True, check=False).returncode == 0  # noqa: S603 - fixed argument list


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate_builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
    )


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write with ``mode`` from the first byte: no window in which a key is world-readable."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem, 0o600)


def main(argv: list[str] | None = None) -> int:
    """Run the persistent stack until SIGINT/SIGTERM; one line of output once it is ready."""
    parser = argparse.ArgumentParser(
        description="Run notary-signer + notary-server for development until interrupted."
    )
    parser.add_argument("--state-dir", type=Path, default=Path("var/notary"))
    parser.add_argument("--server-port", type=int, default=4443)
    parser.add_argument("--signer-port", type=int, default=7899)
    parser.add_argument(
        "--postgres-url",
        help=f"default: {LOCAL_POSTGRES_URL} if it answers, else a cluster in the state dir",
    )
    parser.add_argument(
        "--server-config-json",
        type=Path,
        help='a JSON object of extra notary-server config sections, such as {"auth": …}',
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        ensure_notary_installed()
        server_config = {}
        if args.server_config_json is not None:
            server_config = json.loads(args.server_config_json.read_text())
        suffix = _database_suffix(args.state_dir)
        stack = NotaryStack(
            state_dir=args.state_dir.resolve(),
            server_port=args.server_port,
            signer_port=args.signer_port,
            server_db=f"gatehouse_notary_server_{suffix}",
            signer_db=f"gatehouse_notary_signer_{suffix}",
            postgres_url=args.postgres_url or _default_postgres(args.state_dir),
            server_config=server_config,
        )
        stack.start()
    except (NotaryStackError, OSError, ValueError) as error:
        print(f"devtools.notary: {error}", file=sys.stderr)
        return 1
    print(f"notary-server ready at {stack.url} (state in {args.state_dir})", flush=True)
    while not stop.wait(1):
        if not stack.alive():
            print(f"devtools.notary: a notary process exited:\n{stack.log_tail()}", file=sys.stderr)
            stack.stop()
            return 1
    stack.stop()
    return 0


def _database_suffix(state_dir: Path) -> str:
    """The state dir's own database names: the signer's keys are encrypted with this dir's
    passphrase, so a new state dir must never reuse databases an old one left behind."""
    path = state_dir / "database-suffix"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(4))
    return path.read_text().strip()


def _default_postgres(state_dir: Path) -> str | None:
    """Keep using a private cluster once there is one; else the local server if it answers."""
    if (state_dir / "pg" / "PG_VERSION").exists() or not postgres_answers(LOCAL_POSTGRES_URL):
        return None
    return LOCAL_POSTGRES_URL


if __name__ == "__main__":
    sys.exit(main())
